"""Every body-taking route, fed malformed bodies of every shape: always a 4xx problem+json with a
code, never a 500. The routes and their fields come from the app's own OpenAPI document."""
from __future__ import annotations

import pytest
import requests

from tests.support.live import PASSWORD, register_device

WEIRD_VALUES = [None, 0, -1, 10**30, 1.5, True, "", " ", "x" * 5000, "\u0000\ud7ff\U0001f600", [], ["a"], {}, {"a": 1}]


def body_routes(spec: dict) -> list[tuple[str, str, list[str]]]:
    routes = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if "requestBody" not in op:
                continue
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            fields = list(spec["components"]["schemas"][ref].get("properties", {}))
            routes.append((method.upper(), path.replace("{device_id}", "00000000-0000-4000-8000-000000000000"), fields))
    return routes


def assert_problem(response: requests.Response, context) -> None:
    assert 400 <= response.status_code < 500, (context, response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json"), context
    assert isinstance(response.json().get("code"), str), context


@pytest.fixture
def caller(make_server):
    url, _ = make_server(login_max_failures=100000, login_max_failures_per_ip=100000)
    client = register_device(url)
    client.login(PASSWORD)
    return url, client


def test_malformed_bodies_never_cause_a_500(caller):
    url, client = caller
    headers = {"Authorization": f"Bearer {client.access_token}"}
    spec = requests.get(url + "/openapi.json", timeout=10).json()
    # Last, since some of its bodies are valid and end the caller's session.
    routes = sorted(body_routes(spec), key=lambda route: route[1] == "/session/logout_all")
    assert len(routes) >= 10, routes
    raw_bodies = [b"", b"{", b"[]", b"null", b"42", b'"s"', b"\xff\xfe", b'{"a":' * 200 + b"1" + b"}" * 200]
    for method, path, fields in routes:
        for raw in raw_bodies:
            response = requests.request(method, url + path, data=raw, headers={**headers, "Content-Type": "application/json"},
                                        timeout=10)
            if response.status_code in (200, 201, 204):
                continue  # routes whose body is optional
            assert_problem(response, (method, path, raw[:20]))
        for field in fields:
            for value in WEIRD_VALUES:
                response = requests.request(method, url + path, json={field: value}, headers=headers, timeout=10)
                if response.status_code < 300:
                    continue
                assert_problem(response, (method, path, field, repr(value)[:30]))


def test_protected_routes_were_past_authentication(caller):
    url, client = caller
    response = client.request("PATCH", "/device/00000000-0000-4000-8000-000000000000", json={"device_name": 5})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_field")


def test_malformed_headers_and_paths(caller):
    url, _ = caller
    for headers in ({"Authorization": "Bearer " + "a" * 5000}, {"Authorization": "Bearer a.b.c"},
                    {"Authorization": "Bearer \u00e9"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        try:
            response = requests.get(url + "/session/me", headers=headers, timeout=10)
        except UnicodeEncodeError:
            continue
        assert_problem(response, headers)
    for path in ("/nope", "/device/" + "x" * 300, "/session/history?limit=-1", "/session/history?cursor=%00"):
        response = requests.get(url + path, timeout=10)
        assert_problem(response, path)
    assert_problem(requests.put(url + "/login/", timeout=10), "PUT /login/")
