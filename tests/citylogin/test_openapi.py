"""Every service's GET /openapi.json is a valid OpenAPI 3.1 document that describes each
operation's success, its problem+json errors and its parameters (SPEC §3)."""
from __future__ import annotations

import importlib
import re

import pytest
import requests
from openapi_spec_validator import validate

SERVICES = ["citylogin.app", "registration.app_registration", "login_app.app_login",
            "session_manager.app_session_manager", "device_manager.app_device_manager"]
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
ERROR_PAGE = {"text/html": {"schema": {"type": "string"}}}
OAUTH_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
# A provider's answer comes back through the person's browser (SPEC §16): every refusal is a page, and a form post
# that came without its cookie is a page (200) that posts it once more, beside the 303 of a checked answer.
BROWSER_CALLBACKS = {"/federation/{name}/callback"}
OAUTH_ENDPOINTS = {"/oidc/token", "/oidc/revoke", "/oidc/par", "/oidc/device_authorization", "/oidc/register",
                   "/oidc/register/{client_id}"}


@pytest.fixture(scope="module")
def documents(dynamodb_endpoint, data_dir, table_prefix):
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
              "table_prefix": table_prefix, "log_level": "WARNING"}
    apps = {name: importlib.import_module(name).create_app(config) for name in SERVICES}
    return {name: app.test_client().get("/openapi.json").get_json() for name, app in apps.items()}


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            yield f"{method.upper()} {path}", op


@pytest.mark.parametrize("service", SERVICES)
def test_the_document_is_valid_openapi_3_1(documents, service):
    document = documents[service]
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert list(operations(document))


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_documents_its_success_and_its_problems(documents, service):
    for label, op in operations(documents[service]):
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2") or s == "303"}
        browser = label.split(" ")[1] in BROWSER_CALLBACKS
        if browser and "200" in successes:
            assert successes.pop("200")["content"] == ERROR_PAGE, label
        assert len(successes) == 1, label
        [(status, success)] = successes.items()
        if status in ("204", "303"):  # 303: the browser is sent on, with a Location
            assert "content" not in success, label
        else:
            [media] = success["content"].values()
            assert media["schema"], label
        errors = {s: r for s, r in op["responses"].items() if not s.startswith("2") and s != "303"}
        # 414 comes from the HTTP server, before the app: documented, with the server's own body. The
        # back-channel endpoints of the OpenID Provider answer RFC 6749 §5.2's JSON errors instead, and a
        # browser's 400 at /oidc/authorize and /oidc/logout is an error page for the person.
        format_ = OAUTH_ERROR if label.split(" ")[1] in OAUTH_ENDPOINTS else PROBLEM
        assert all(r["content"] == format_ or ((s == "400" or browser) and r["content"] == {**ERROR_PAGE, **PROBLEM})
                   for s, r in errors.items() if s != "414"), label
        assert "content" not in errors.get("414", {}), label
        if "security" in op:
            assert "401" in errors, label
        if "requestBody" in op:
            assert {"400", "413"} <= set(errors), label
        if op.get("parameters"):
            assert "414" in errors, label
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "400" in errors, label


def test_path_and_query_parameters_are_declared(documents):
    document = documents["citylogin.app"]
    for label, op in operations(document):
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{([^}]+)}", label)), label
    uuid = {"type": "string", "format": "uuid"}
    assert document["paths"]["/device/{device_id}"]["patch"]["parameters"][0]["schema"] == uuid
    assert document["paths"]["/session/{session_id}"]["delete"]["parameters"][0]["schema"] == uuid
    query = {p["name"]: p for p in document["paths"]["/session/history"]["get"]["parameters"]}
    assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert query["cursor"]["schema"]["type"] == "string"
    assert [p["name"] for p in document["paths"]["/session/events"]["get"]["parameters"]] == ["access_token"]


def test_optional_bodies_are_not_required(documents):
    paths = documents["citylogin.app"]["paths"]
    assert paths["/session/logout_all"]["post"]["requestBody"]["required"] is False
    assert paths["/registration/request_pairing_token"]["post"]["requestBody"]["required"] is False
    assert paths["/login/"]["post"]["requestBody"]["required"] is True


def test_patch_device_list_does_not_reach_the_rename_route(make_server):
    url, _ = make_server()
    response = requests.patch(url + "/device/list", json={"device_name": "x"}, timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "method_not_allowed"


def _body_schema(document: dict, path: str, method: str = "post") -> dict:
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


@pytest.mark.parametrize("path, fields", [
    ("/login/", ["username", "password", "passkey", "client_cert", "client_cert_fp", "challenge", "signature"]),
    ("/registration/request_pairing_token", ["username", "password", "client_cert_fp"]),
])
def test_fields_that_may_be_left_out_are_not_null_in_the_document_nor_at_the_server(documents, make_server,
                                                                                     path, fields):
    properties = _body_schema(documents["citylogin.app"], path)["properties"]
    for name in fields:
        assert "null" not in str(properties[name]) and "default" not in properties[name], (path, name)
    url, _ = make_server()
    for name in fields:
        body = {"username": "someone", "password": "a password", "client_cert_fp": "ab" * 32, name: None}
        answer = requests.post(url + path, json=body, timeout=10)
        assert answer.status_code == 400 and answer.headers["Content-Type"] == "application/problem+json"
        assert (answer.json()["code"], answer.json()["field"], answer.json()["kind"]) == \
            ("invalid_field", name, "invalid_value"), (path, name, answer.json())
