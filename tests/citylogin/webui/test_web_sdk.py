"""The web SDK's files: served at /sdk/ as JavaScript with CORS for the allowed origins, and its
TypeScript declaration declares every export of the module, and every public member of its classes."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from citylogin.app import create_app

SDK = Path(__file__).resolve().parents[3] / "citylogin" / "sdk"
APP_ORIGIN = "https://app.example.com"

# `export class X`, `export async function X`, `export const X`, `export { A, B as C }` (module side).
JS_EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:class|function\*?|const|let|var)\s+([A-Za-z_$][\w$]*)", re.M)
JS_EXPORT_LIST = re.compile(r"^export\s*\{([^}]*)\}", re.M)
# `export declare class X`, `export interface X`, `export type X`, `export declare function X` (.d.ts side).
TS_EXPORT = re.compile(
    r"^export\s+(?:declare\s+)?(?:abstract\s+)?(?:class|interface|type|function|const|let|enum)\s+([A-Za-z_$][\w$]*)",
    re.M)
# A class member at the class body's indentation: methods, getters and fields; `#private` ones are not API.
JS_MEMBER = re.compile(r"^  (?:static\s+)?(?:async\s+)?(?:get\s+|set\s+)?([A-Za-z_$][\w$]*)\s*\(", re.M)
JS_FIELD = re.compile(r"^    this\.([A-Za-z_$][\w$]*)\s*=", re.M)
TS_MEMBER = re.compile(r"^  (?:readonly\s+)?([A-Za-z_$][\w$]*)\s*[(:<?]", re.M)


def js_exports(source: str) -> set[str]:
    names = set(JS_EXPORT.findall(source))
    for listed in JS_EXPORT_LIST.findall(source):
        names |= {part.split(" as ")[-1].strip() for part in listed.split(",") if part.strip()}
    return names


def class_body(source: str, name: str, *, declared: bool) -> str:
    """The text of `class name { ... }` up to the closing brace at column 0."""
    start = re.search(rf"^export\s+{'declare ' if declared else ''}class {name}\b.*$", source, re.M)
    assert start, f"class {name} not found"
    end = source.index("\n}", start.end())
    return source[start.end():end]


def js_members(source: str, name: str) -> set[str]:
    body = class_body(source, name, declared=False)
    return set(JS_MEMBER.findall(body)) | set(JS_FIELD.findall(body))


def ts_members(source: str, name: str) -> set[str]:
    return set(TS_MEMBER.findall(class_body(source, name, declared=True)))


@pytest.fixture(scope="module")
def sources() -> tuple[str, str]:
    return (SDK / "citylogin.js").read_text(encoding="utf-8"), (SDK / "citylogin.d.ts").read_text(encoding="utf-8")


def test_the_declaration_declares_every_export_of_the_module(sources):
    module, declaration = sources
    exported = js_exports(module)
    assert {"Citylogin", "CityloginError", "ConcurrentLogin"} <= exported, exported
    assert exported - set(TS_EXPORT.findall(declaration)) == set()


def test_the_declaration_declares_every_public_member_of_the_classes(sources):
    module, declaration = sources
    error_module = (SDK / "http.js").read_text(encoding="utf-8")
    for name, source in [("Citylogin", module), ("ConcurrentLogin", module), ("CityloginError", error_module)]:
        members = js_members(source, name)
        assert members, name
        assert members - ts_members(declaration, name) == set(), name


def test_the_export_parser_sees_what_it_should():
    source = "export class A {}\nexport async function b() {}\nexport const c = 1;\nexport { d, e as f };\n"
    assert js_exports(source) == {"A", "b", "c", "d", "f"}


@pytest.fixture(scope="module")
def client(dynamodb_endpoint, data_dir, table_prefix):
    app = create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                      "table_prefix": table_prefix, "log_level": "WARNING", "cors_origins": [APP_ORIGIN]})
    return app.test_client()


@pytest.mark.parametrize("name", ["citylogin.js", "http.js", "keystore.js", "session_stream.js", "webauthn.js"])
def test_the_modules_are_javascript_with_cors_for_the_allowed_origin(client, name):
    response = client.get(f"/sdk/{name}", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == (SDK / name).read_bytes()


def test_the_declaration_is_served_and_other_origins_get_no_cors(client):
    response = client.get("/sdk/citylogin.d.ts", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 200
    assert response.mimetype == "application/typescript"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/sdk/nothing.js", "/sdk/README", "/sdk/..%2fweb_ui.py", "/sdk/../app.py"])
def test_anything_else_under_sdk_is_not_found(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_an_allowed_origin_may_send_a_proof_and_read_the_nonce(client):
    """The SDK on an app's page sends Authorization and DPoP, and must read DPoP-Nonce to answer a
    401 use_dpop_nonce."""
    preflight = client.options("/session/me", headers={
        "Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,dpop"})
    allowed = {name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "dpop"} <= allowed
    challenge = client.post("/login/challenge", json={}, headers={"Origin": APP_ORIGIN})
    assert challenge.headers["DPoP-Nonce"]
    assert "DPoP-Nonce" in challenge.headers["Access-Control-Expose-Headers"].split(", ")
