"""Every body-taking route, fed malformed bodies of every shape: always a 4xx problem+json with a
code, never a 500. The routes and their fields come from the app's own OpenAPI document."""
from __future__ import annotations

import json

import base64
import uuid

import pytest
import requests

from tests.conftest import unique_name
from tests.support.live import PASSWORD, FakeClock, register_device
from common.web.rate_limits import limit_subject

WEIRD_VALUES = [None, 0, -1, 10**30, 1.5, True, "", " ", "x" * 5000, "\u0000\ud7ff\U0001f600", [], ["a"], {}, {"a": 1}]


def body_routes(spec: dict) -> list[tuple[str, str, list[str]]]:
    routes = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if "requestBody" not in op:
                continue
            content = op["requestBody"]["content"]
            if "application/json" not in content:
                continue  # a form (RFC 7662 introspection): its own test in tests/apps
            ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            schema = spec["components"]["schemas"][ref]
            # A body of several shapes (POST /registration/) is an anyOf of references.
            shapes = [spec["components"]["schemas"][s["$ref"].rsplit("/", 1)[1]] for s in schema.get("anyOf", [])
                      if "$ref" in s]
            fields = list(dict.fromkeys(f for shape in [schema, *shapes] for f in shape.get("properties", {})))
            # Dynamic registration (RFC 7591) answers its standard's JSON errors, as its OpenAPI operation says.
            oauth = "OAuthError" in json.dumps(op["responses"].get("400", {}))
            routes.append((method.upper(), path.replace("{device_id}", "00000000-0000-4000-8000-000000000000"), fields,
                           oauth))
    return routes


def assert_problem(response: requests.Response, context, *, oauth: bool = False) -> None:
    assert 400 <= response.status_code < 500, (context, response.status_code, response.text[:300])
    if oauth:
        assert response.headers["Content-Type"].startswith("application/json"), context
        assert isinstance(response.json().get("error"), str), context
        return
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
    spec = requests.get(url + "/openapi.json", timeout=10).json()
    # Last, since some of its bodies are valid and end the caller's session.
    routes = sorted(body_routes(spec), key=lambda route: route[1] == "/session/logout_all")
    assert len(routes) >= 10, routes
    raw_bodies = [b"", b"{", b"[]", b"null", b"42", b'"s"', b"\xff\xfe", b'{"a":' * 200 + b"1" + b"}" * 200]
    for method, path, fields, oauth in routes:
        for raw in raw_bodies:
            response = requests.request(method, url + path, data=raw, timeout=10,  # a fresh proof each
                                        headers={**client.auth_headers(method, url + path),
                                                 "Content-Type": "application/json"})
            if response.status_code in (200, 201, 204):
                continue  # routes whose body is optional
            assert_problem(response, (method, path, raw[:20]), oauth=oauth)
        for field in fields:
            for value in WEIRD_VALUES:
                response = requests.request(method, url + path, json={field: value}, timeout=10,
                                            headers=client.auth_headers(method, url + path))
                if response.status_code < 300:
                    continue
                assert_problem(response, (method, path, field, repr(value)[:30]), oauth=oauth)


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


# --- issue 8, defect 6: every malformed input is a 4xx with a code -------------------------

DEVICE_ZERO = "00000000-0000-4000-8000-000000000000"
# Every route that parses a JSON body, with the method; protected ones get the caller's token.
JSON_ROUTES = [("POST", "/registration/"), ("POST", "/registration/request_pairing_token"), ("POST", "/login/"),
               ("POST", "/login/confirm"), ("POST", "/session/refresh"), ("POST", "/session/logout_all"),
               ("POST", "/device/register"), ("PATCH", "/device/" + DEVICE_ZERO), ("POST", "/device/force_logout"),
               ("POST", "/device/unbind")]


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def expect(response: requests.Response, status: int, code: str, field: str | None = None) -> dict:
    assert_problem(response, (response.request.method, response.request.url[:80]))
    body = response.json()
    assert (response.status_code, body["code"]) == (status, code), body
    if field:
        assert body.get("field") == field, body
    return body


def test_json_nested_a_thousand_deep_is_400_invalid_json(caller):
    url, client = caller
    for method, path in JSON_ROUTES:
        for raw in (b"[" * 1000 + b"]" * 1000, nested(5000), b'{"username":' + b"[" * 3000 + b"]" * 3000 + b"}"):
            # request_pairing_token with a session never reads its body; without one it must.
            auth = {} if "pairing" in path else client.auth_headers(method, url + path)  # a fresh proof each
            response = requests.request(method, url + path, data=raw,
                                        headers={**auth, "Content-Type": "application/json"}, timeout=10)
            expect(response, 400, "invalid_json")


def test_values_nested_just_below_the_parser_limit_are_a_4xx(caller):
    # Whether json still parses these depends on the stack depth left; pydantic must cope if it does.
    url, client = caller
    for depth in (500, 900, 950, 990):
        for method, path in [route for route in JSON_ROUTES if route[1] != "/session/logout_all"]:
            raw = b'{"device_name":' + b"[" * depth + b"]" * depth + b', "username":' + nested(depth) + b"}"
            # with a session it never reads its body; a fresh proof for each request
            auth = {} if "pairing" in path else client.auth_headers(method, url + path)
            response = requests.request(method, url + path, data=raw,
                                        headers={**auth, "Content-Type": "application/json"}, timeout=10)
            assert response.status_code == 400 and response.json()["code"] in ("invalid_json", "invalid_field",
                                                                                "missing_fields"), response.text


def test_qr_payload_nested_a_thousand_deep_is_400_invalid_qr(caller):
    url, _ = caller
    payload = b64url(b"[" * 1500 + b"]" * 1500)
    assert len(payload) <= 4096
    for path in ("/device/register", "/registration/"):
        body = {"qr_code": payload, "username": "someone", "password": PASSWORD}
        expect(requests.post(url + path, json=body, timeout=10), 400, "invalid_qr")
        body["qr_code"] = "http://127.0.0.1:5000/#pair=" + payload
        expect(requests.post(url + path, json=body, timeout=10), 400, "invalid_qr")


def test_history_cursor_nested_deep_is_400_invalid_field(caller):
    url, client = caller
    for raw in (b"[" * 300 + b"]" * 300, nested(250), b'{"k": ' + b"[" * 250 + b"]" * 250 + b"}", b"\xff\xfe",
                b'{"k": 5}', b'{"k": ""}', b"null"):
        response = client.request("GET", "/session/history", params={"cursor": b64url(raw)})
        expect(response, 400, "invalid_field", "cursor")


def test_history_cursor_decoder_survives_any_depth():
    from sessions.history_store import BadCursor, _decode
    for raw in (b"[" * 5000 + b"]" * 5000, nested(5000)):
        with pytest.raises(BadCursor):
            _decode(b64url(raw))


def test_qr_decoder_survives_any_depth():
    from devices.qr import InvalidQr, decode_payload
    with pytest.raises(InvalidQr):
        decode_payload(b64url(nested(5000)))


def test_access_token_with_a_deeply_nested_header_is_401(caller):
    url, _ = caller
    token = b64url(nested(3000)) + ".e30.c2ln"
    response = requests.get(url + "/session/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    expect(response, 401, "invalid_token")


def test_overlong_and_malformed_ids(caller):
    url, client = caller
    for bad in ("a" * 2100, "x", "not-a-uuid", DEVICE_ZERO.replace("-", ""), "%00", "..%2f..%2fx", "é" * 700):
        for method, path in (("DELETE", "/session/"), ("GET", "/session/"), ("PATCH", "/device/")):
            response = client.request(method, path + bad, json={"device_name": "x"})
            assert response.status_code in (404, 405), (method, bad, response.status_code, response.text[:200])
            assert_problem(response, (method, bad[:20]))
        for path in ("/device/force_logout", "/device/unbind"):
            response = client.request("POST", path, json={"device_id": bad})
            assert response.status_code in (400, 404), (path, bad[:20], response.text[:200])
            assert response.json()["code"] in ("invalid_field", "device_not_found"), response.text[:200]
    response = client.request("DELETE", "/session/" + "a" * 2100)  # DynamoDB refuses keys over 2048 bytes
    assert response.status_code == 404 and response.json()["code"] in ("not_found", "session_not_found")
    expect(client.request("DELETE", f"/session/{uuid.uuid4()}"), 404, "session_not_found")
    expect(client.request("PATCH", f"/device/{uuid.uuid4()}", json={"device_name": "x"}), 404, "device_not_found")
    expect(client.request("POST", "/device/force_logout", json={"device_id": "a" * 36}), 404, "device_not_found")


def test_usernames_that_normalise_past_a_key_are_400(caller):
    # U+FDFA becomes 18 characters under NFKC: 256 of them would make a 2048-byte key refused by DynamoDB.
    url, client = caller
    huge = "\ufdfa" * 256
    body = {"username": huge, "password": "x", "client_cert": client.key_file.client_cert_b64(),
            "challenge": "c", "signature": "AAAA"}
    expect(requests.post(url + "/login/", json=body, timeout=10), 400, "invalid_field", "username")
    expect(requests.post(url + "/registration/request_pairing_token",
                         json={"username": huge, "password": "x", "client_cert_fp": "a" * 64}, timeout=10),
           400, "invalid_field", "username")
    expect(requests.post(url + "/device/register", json={"qr_code": "x", "username": huge, "password": "x"},
                         timeout=10), 400, "invalid_field", "username")
    expect(requests.post(url + "/registration/", json={"username": huge, "email": "a@example.com",
                                                       "password": PASSWORD}, timeout=10),
           400, "invalid_field", "username")


def test_booleans_must_be_json_booleans(caller):
    url, client = caller
    for value in ("no", "false", "False", 0, 1, "0", "", None, [], {}):
        response = client.request("POST", "/session/logout_all", json={"include_current": value})
        expect(response, 400, "invalid_field", "include_current")
    assert client.request("GET", "/session/me").status_code == 200  # "no" did not log anyone out
    login = {"username": client.key_file.username, "password": PASSWORD,
             "client_cert": client.key_file.client_cert_b64(), "challenge": "c", "signature": "AAAA"}
    expect(requests.post(url + "/login/", json={**login, "force": "yes"}, timeout=10), 400, "invalid_field", "force")
    expect(client.request("POST", "/device/unbind", json={"device_id": client.key_file.device_id,
                                                          "confirm_last": "true"}),
           400, "invalid_field", "confirm_last")
    assert client.request("GET", "/device/list").json()["devices"][0]["status"] == "active"


def test_every_request_model_has_strict_booleans():
    from pydantic import BaseModel, ValidationError

    import accounts.models
    import devices.models
    import flows.models
    import sessions.models
    models = [m for module in (accounts.models, devices.models, flows.models, sessions.models)
              for m in vars(module).values()
              if isinstance(m, type) and issubclass(m, BaseModel) and m.__name__.endswith("Request")
              and not m.__name__.startswith("Registration")]
    checked = 0
    for model in models:
        for name, field in model.model_fields.items():
            if field.annotation is not bool:
                continue
            with pytest.raises(ValidationError) as failure:
                model.model_validate({name: "no"})
            assert any(e["loc"] == (name,) and e["type"] == "bool_type" for e in failure.value.errors()), model
            checked += 1
    assert checked >= 3


BAD_NAMES = ["a\x00b", "tab\there", "new\nline", "\x1b[31mred", "bell\x07", "del\x7f", "c1\x85c1",
             "evil\u202egnp.exe", "iso\u2066late\u2069", "rlm\u200f", "zw\u200bsp", "bom\ufeff", "line\u2028sep"]


def test_device_names_reject_control_and_bidi_characters(caller):
    url, client = caller
    for name in BAD_NAMES + ["x" * 65, "   ", ""]:
        expect(client.request("PATCH", f"/device/{client.key_file.device_id}", json={"device_name": name}),
               400, "invalid_field", "device_name")
        new_user = {"username": unique_name(), "email": f"{unique_name()}@example.com", "password": PASSWORD,
                    "device_name": name}
        expect(requests.post(url + "/registration/", json=new_user, timeout=10), 400, "invalid_field", "device_name")
        paired = {"qr_code": "x" * 30, "username": "someone", "password": "x", "device_name": name}
        for path in ("/device/register", "/registration/"):
            expect(requests.post(url + path, json=paired, timeout=10), 400, "invalid_field", "device_name")
    names = [d["device_name"] for d in client.request("GET", "/device/list").json()["devices"]]
    assert names == ["First device"], names


def test_device_names_are_trimmed_and_may_be_any_script(caller):
    url, client = caller
    for name, stored in (("  Kitchen tablet  ", "Kitchen tablet"), ("台所のタブレット", "台所のタブレット"),
                         ("\u0645\u0648\u0628\u0627\u06cc\u200c\u0644", "\u0645\u0648\u0628\u0627\u06cc\u200c\u0644"),
                         ("👨\u200d👩\u200d👧 phone", "👨\u200d👩\u200d👧 phone"), ("x" * 64, "x" * 64)):
        response = client.request("PATCH", f"/device/{client.key_file.device_id}", json={"device_name": name})
        assert response.status_code == 200, response.text
        assert client.request("GET", "/device/list").json()["devices"][0]["device_name"] == stored


def test_login_challenges_are_rate_limited_per_ip(make_server):
    # Tables of its own: the module's other tests ask for challenges from 127.0.0.1 too.
    url, ctx = make_server(challenges_per_minute_per_ip=3, table_prefix=f"t{uuid.uuid4().hex[:8]}_")
    ctx.clock = clock = FakeClock()
    clock.moment = clock.moment.replace(second=15)  # no new window during the test
    with requests.Session() as http:
        answers = [http.post(url + "/login/challenge", timeout=10) for _ in range(5)]
        assert [a.status_code for a in answers[:3]] == [201, 201, 201]
        for answer in answers[3:]:
            body = expect(answer, 429, "rate_limited")
            assert answer.headers["Retry-After"] == "45" and body["retry_after"] == 45
        clock.advance(45)
        assert http.post(url + "/login/challenge", timeout=10).status_code == 201


def test_the_challenge_limit_has_a_generous_default():
    from common.config import load_settings
    assert load_settings({}, environ={}).challenges_per_minute_per_ip >= 100
    assert load_settings({}, environ={"CITYLOGIN_CHALLENGES_PER_MINUTE_PER_IP": "7"}).challenges_per_minute_per_ip == 7


def test_too_large_chunked_body_is_413_not_cut_short(caller):
    url, _ = caller
    # werkzeug on its own stops a streamed body at the limit and would parse the first 64 KiB.
    chunks = iter([b'{"refresh_token": "x"}'] + [b" " * 16384] * 8)
    response = requests.post(url + "/session/refresh", data=chunks, timeout=10,
                             headers={"Content-Type": "application/json"})
    expect(response, 413, "payload_too_large")
    small = iter([b'{"refresh_token"', b': "x"}'])
    response = requests.post(url + "/session/refresh", data=small, timeout=10,
                             headers={"Content-Type": "application/json"})
    expect(response, 401, "invalid_refresh_token")


def test_forged_forwarded_for_never_reaches_a_key(make_server):
    # CITYLOGIN_TRUSTED_PROXIES set, but a proxy that passes X-Forwarded-For through: the "IP" is any text.
    url, _ = make_server(trusted_proxies=1, trusted_client_cert_header="X-Client-Cert")
    client = register_device(url)
    for forged in ("x" * 3000, "not an ip", "1.2.3.4" + "0" * 2000):
        headers = {"X-Forwarded-For": forged}
        assert requests.post(url + "/login/challenge", headers=headers, timeout=10).status_code == 201
        response = requests.post(url + "/login/", timeout=30, headers={**headers, "X-Client-Cert": "%ff" * 100},
                                 json={"username": client.key_file.username, "password": "wrong password"})
        assert_problem(response, forged[:20])


def test_an_optional_body_of_only_whitespace_is_not_json(make_server):
    """POST /session/logout_all takes no body or a JSON object; "\\r\\n" is neither (Schemathesis'
    negative_data_rejection found it accepted as if empty)."""
    url, _ = make_server()
    client = register_device(url)
    client.login(PASSWORD)

    def headers() -> dict[str, str]:
        return {**client.auth_headers("POST", url + "/session/logout_all"), "Content-Type": "application/json"}

    expect(requests.post(url + "/session/logout_all", data=b"\r\n", headers=headers(), timeout=10), 400,
           "invalid_json")
    assert requests.post(url + "/session/logout_all", headers=headers(), timeout=10).status_code == 204


def test_ipv6_clients_are_limited_by_their_64(make_server):
    # A host is given a whole /64: counted address by address, it would have 2^64 allowances.
    url, ctx = make_server(challenges_per_minute_per_ip=3, trusted_proxies=1,
                           table_prefix=f"t{uuid.uuid4().hex[:8]}_")
    ctx.clock = clock = FakeClock()
    clock.moment = clock.moment.replace(second=15)  # no new window during the test
    network = f"2001:db8:{uuid.uuid4().int % 0xffff:x}:7"

    def challenge(ip: str) -> requests.Response:
        return requests.post(url + "/login/challenge", headers={"X-Forwarded-For": ip}, timeout=10)

    assert [challenge(f"{network}::{i:x}").status_code for i in range(1, 4)] == [201, 201, 201]
    expect(challenge(f"{network}:ffff:ffff:ffff:ffff"), 429, "rate_limited")  # same /64, another address
    assert challenge(f"{network[:-1]}8::1").status_code == 201  # the next /64 has its own
    ipv4 = f"203.0.{uuid.uuid4().int % 250}.9"
    assert [challenge(ip).status_code for ip in (ipv4, ipv4, f"::ffff:{ipv4}")] == [201, 201, 201]
    expect(challenge(f"::ffff:{ipv4}"), 429, "rate_limited")  # an IPv4-mapped address is its IPv4 address


def test_the_limit_subject_of_an_address():
    assert limit_subject("2001:db8:1:2:3:4:5:6") == limit_subject("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert limit_subject("::ffff:192.0.2.1") == limit_subject("192.0.2.1") == "192.0.2.1"
    assert limit_subject(None) == limit_subject("not an address") == "unknown"
