"""Apps that register themselves (RFC 7591) and manage their registration (RFC 7592; SPEC §14): POST
/oidc/register with an operator's initial access token, its uses and expiry; the answer of RFC 7591 §3.2.1
and the registration access token for GET, PUT and DELETE; the refusals in RFC 7591's and RFC 6750's own
JSON; open registration as a setting; a registered app is an ordinary app that signs people in; the
registrations of one address are limited; registrations racing for a token's last use, from real threads on
DynamoDB Local, get one app."""
from __future__ import annotations

import base64
import json
import threading

import jwt
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relying_parties import registration_tokens
from relying_parties import service as apps
from common.crypto.tokens import token_digest
from tests.conftest import app_settings
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, FakeClock, register_device
from tests.support.oidc import finish_as_device, query_of, waiting_request

# Real servers on sockets, one module's many requests: the slow tier (the rules' unit tests are fast).
pytestmark = pytest.mark.slow

REDIRECT = "https://rp.example/callback"
METADATA = {"redirect_uris": [REDIRECT], "client_name": "Rebus", "grant_types": ["authorization_code", "refresh_token"],
            "logo_uri": "https://rp.example/logo.png", "contacts": ["ops@rp.example"]}


@pytest.fixture
def server(make_server):
    # every test here registers from 127.0.0.1 within a minute or so: the address's limit has its own test
    return make_server(host_name="127.0.0.1", oidc_registrations_per_minute_per_ip=1000)


def _register(url: str, token: str | None, body=None, *, raw: bytes | None = None, **headers) -> requests.Response:
    sent = {**({"Authorization": f"Bearer {token}"} if token else {}), **headers}
    if raw is not None:
        return requests.post(url + "/oidc/register", data=raw, headers=sent, timeout=10)
    return requests.post(url + "/oidc/register", json=METADATA if body is None else body, headers=sent, timeout=10)


def _managed(method: str, registration: dict, token: str | None = None, **kwargs) -> requests.Response:
    token = registration["registration_access_token"] if token is None else token
    return requests.request(method, registration["registration_client_uri"], timeout=10,
                            headers={"Authorization": f"Bearer {token}"}, **kwargs)


def _error(response: requests.Response) -> tuple[int, str]:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    assert response.headers.get("Cache-Control") == "no-store"
    return response.status_code, response.json()["error"]


def _refused_token(response: requests.Response) -> None:
    assert _error(response) == (401, "invalid_token"), response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_an_app_registers_itself_and_signs_a_person_in(server):
    url, ctx = server
    made = registration_tokens.make_token(ctx, uses=1)
    registered = _register(url, made.token)
    assert registered.status_code == 201, registered.text
    assert registered.headers["Cache-Control"] == "no-store"
    answer = registered.json()
    client_id = answer["client_id"]
    assert answer["registration_client_uri"] == f"{url}/oidc/register/{client_id}"
    assert answer["client_secret"] and answer["client_secret_expires_at"] == 0
    assert answer["client_id_issued_at"] > 0 and answer["token_endpoint_auth_method"] == "client_secret_basic"
    assert (answer["redirect_uris"], answer["client_name"], answer["logo_uri"], answer["contacts"]) == \
        ([REDIRECT], "Rebus", METADATA["logo_uri"], ["ops@rp.example"])
    assert answer["grant_types"] == ["authorization_code", "refresh_token"] and answer["response_types"] == ["code"]

    app = apps.show_app(ctx, client_id=client_id)  # an ordinary app, kept with digests alone
    assert app.registered_with == made.record.token_id and app.consent
    assert app.registration_token_digest == token_digest(answer["registration_access_token"],
                                                         purpose="registration_access_token")
    assert answer["registration_access_token"] not in json.dumps(app.public())
    assert apps.secret_matches(app, answer["client_secret"])
    assert registration_tokens.store(ctx).get(made.record.token_id).uses_left == 0

    device = register_device(url)
    device.login(PASSWORD)
    request_id, verifier = waiting_request(url, client_id, redirect_uri=REDIRECT, browser=device)
    code = query_of(finish_as_device(device, request_id, consent=True))["code"]  # it asks the person first
    tokens = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": REDIRECT, "code_verifier": verifier},
                           auth=(client_id, answer["client_secret"]), timeout=10)
    assert tokens.status_code == 200, tokens.text

    _refused_token(_register(url, made.token))  # its one use is spent


def test_an_initial_access_token_must_be_presented_unexpired_and_unspent(server):
    url, ctx = server
    _refused_token(_register(url, None))
    _refused_token(_register(url, "not-a-token"))
    made = registration_tokens.make_token(ctx, uses=2, expires_in=60)
    token_id, _, secret = made.token.partition(".")
    _refused_token(_register(url, f"{token_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"))
    _refused_token(_register(url, made.token, Authorization=f"Basic {made.token}"))
    assert _register(url, made.token).status_code == 201
    registration_tokens.revoke_token(ctx, token_id=token_id)
    _refused_token(_register(url, made.token))

    clock = FakeClock()
    ctx.clock = clock
    expiring = registration_tokens.make_token(ctx, uses=5, expires_in=60)
    clock.advance(61)
    _refused_token(_register(url, expiring.token))
    assert registration_tokens.store(ctx).get(expiring.record.token_id).uses_left == 5


def test_a_registration_reads_replaces_and_deletes_itself_with_its_access_token(server):
    url, ctx = server
    answer = _register(url, registration_tokens.make_token(ctx).token).json()
    read = _managed("GET", answer)
    assert read.status_code == 200, read.text
    assert {k: v for k, v in read.json().items() if k != "client_secret"} == \
        {k: v for k, v in answer.items() if k != "client_secret"}

    body = {"client_id": answer["client_id"], "redirect_uris": ["https://rp.example/cb2"], "client_name": "Rebus 2",
            "userinfo_signed_response_alg": "ES256"}
    replaced = _managed("PUT", answer, json=body)
    assert replaced.status_code == 200, replaced.text
    shown = replaced.json()
    assert (shown["redirect_uris"], shown["client_name"], shown["userinfo_signed_response_alg"]) == \
        (["https://rp.example/cb2"], "Rebus 2", "ES256")
    assert "logo_uri" not in shown and shown["grant_types"] == ["authorization_code"]  # replaced whole
    assert "client_secret" not in shown
    app = apps.show_app(ctx, client_id=answer["client_id"])
    assert app.name == "Rebus 2" and app.logo_uri is None and app.oidc().redirect_uris == ("https://rp.example/cb2",)

    echoed = _managed("PUT", answer, json={**body, "client_secret": answer["client_secret"]})
    assert echoed.json()["client_secret"] == answer["client_secret"]
    for member, value in (("client_id", "app_other"), ("client_secret", "wrong")):
        refused = _managed("PUT", answer, json={**body, member: value})
        assert _error(refused) == (400, "invalid_client_metadata") and member in refused.json()["error_description"]
    public = _managed("PUT", answer, json={**body, "token_endpoint_auth_method": "none"})
    assert _error(public) == (400, "invalid_client_metadata")

    assert _managed("DELETE", answer).status_code == 204
    assert apps.find_app(ctx, client_id=answer["client_id"]) is None
    _refused_token(_managed("GET", answer))  # the same answer as for a wrong token or an app never there


def test_only_the_apps_own_registration_access_token_manages_it(server):
    url, ctx = server
    first = _register(url, registration_tokens.make_token(ctx).token).json()
    second = _register(url, registration_tokens.make_token(ctx).token).json()
    for method in ("GET", "PUT", "DELETE"):
        _refused_token(_managed(method, first, second["registration_access_token"], json={}))
        _refused_token(_managed(method, first, "", json={}))
        _refused_token(requests.request(method, first["registration_client_uri"], timeout=10, json={}))
    never = {**first, "registration_client_uri": f"{url}/oidc/register/app_00000000000000000000"}
    _refused_token(_managed("GET", never))
    operator_added = apps.add_app(ctx, name="Notes", push_url=None).app  # no registration access token at all
    _refused_token(_managed("GET", {**first, "registration_client_uri":
                                    f"{url}/oidc/register/{operator_added.client_id}"}))
    assert _managed("GET", first).status_code == 200


@pytest.mark.parametrize(("body", "error", "member"), [
    ({**METADATA, "redirect_uris": ["http://rp.example/callback"]}, "invalid_redirect_uri", "redirect_uris"),
    ({**METADATA, "redirect_uris": []}, "invalid_redirect_uri", "redirect_uris"),
    ({**METADATA, "grant_types": ["implicit"]}, "invalid_client_metadata", "grant_types"),
    ({**METADATA, "response_types": ["id_token"]}, "invalid_client_metadata", "response_types"),
    ({**METADATA, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata",
     "token_endpoint_auth_method"),
    ({**METADATA, "id_token_signed_response_alg": "none"}, "invalid_client_metadata", "id_token_signed_response_alg"),
    ({**METADATA, "logo_uri": "javascript:alert(1)"}, "invalid_client_metadata", "logo_uri"),
    ({**METADATA, "subject_type": "pairwise"}, "invalid_client_metadata", "subject_type"),
    ({**METADATA, "default_max_age": 60}, "invalid_client_metadata", "default_max_age"),
    ([METADATA], "invalid_client_metadata", "request"),
])
def test_a_refused_member_is_named_and_nothing_is_spent(server, body, error, member):
    url, ctx = server
    made = registration_tokens.make_token(ctx)
    refused = _register(url, made.token, body)
    assert _error(refused) == (400, error), refused.text
    assert refused.json()["error_description"].startswith(f"{member}:")
    assert registration_tokens.store(ctx).get(made.record.token_id).uses_left == 1


def test_a_body_that_is_no_json_is_invalid_client_metadata(server):
    url, ctx = server
    made = registration_tokens.make_token(ctx)
    for raw in (b"", b"{", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b"null"):
        refused = _register(url, made.token, raw=raw, **{"Content-Type": "application/json"})
        assert _error(refused) == (400, "invalid_client_metadata"), (raw[:20], refused.text)


def test_open_registration_is_a_setting_off_by_default(make_server):
    url, ctx = make_server(oidc_open_registration=True)
    registered = _register(url, None)
    assert registered.status_code == 201, registered.text
    assert apps.show_app(ctx, client_id=registered.json()["client_id"]).registered_with == "open"
    _refused_token(_register(url, "wrong.token"))  # a token presented is checked, open or not


def _unsigned_object_answer(url: str, client_id: str) -> dict[str, str]:
    """An authorization request carried in an unsigned request object (alg none): where /oidc/authorize sends
    the browser ({"signs_in": ...} for the sign-in page, else the app's redirect's parameters)."""
    claims = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
              "state": "inside"}
    encoded = [base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
               for part in ({"alg": "none"}, claims)]
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
             "request": ".".join(encoded) + "."}
    answer = requests.get(url + "/oidc/authorize", params=query, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), (answer.status_code, answer.text[:300])
    location = answer.headers["Location"]
    return query_of(location) if location.startswith(REDIRECT) else {"signs_in": location}


def test_a_registered_app_that_names_no_request_object_alg_sends_signed_objects_only(make_server):
    """OIDC Registration §2 lets an omitted request_object_signing_alg mean any alg; citylogin takes it to mean
    any signing alg: an app that sends unsigned objects registers `none`, or the deployment allows them."""
    url, ctx = make_server(host_name="127.0.0.1")
    token = registration_tokens.make_token(ctx, uses=2).token
    silent = _register(url, token, METADATA).json()
    assert "request_object_signing_alg" not in silent or silent["request_object_signing_alg"] is None
    assert apps.show_app(ctx, client_id=silent["client_id"]).oidc().allow_unsigned_request_objects is False
    refused = _unsigned_object_answer(url, silent["client_id"])
    assert (refused["error"], refused["state"]) == ("invalid_request_object", "inside"), refused
    said_none = _register(url, token, {**METADATA, "request_object_signing_alg": "none"}).json()
    assert "signs_in" in _unsigned_object_answer(url, said_none["client_id"])

    url, ctx = make_server(host_name="127.0.0.1", oidc_registered_apps_send_unsigned_request_objects=True)
    allowed = _register(url, registration_tokens.make_token(ctx).token, METADATA).json()
    assert "signs_in" in _unsigned_object_answer(url, allowed["client_id"])


def test_an_address_registers_so_many_apps_a_minute(make_server):
    url, ctx = make_server(oidc_open_registration=True, oidc_registrations_per_minute_per_ip=2)
    clock = FakeClock()
    clock.advance(3600)  # a minute of its own: the module's other tests registered from this address too
    ctx.clock = clock
    assert [_register(url, None).status_code for _ in range(2)] == [201, 201]
    limited = _register(url, None)
    assert _error(limited) == (429, "temporarily_unavailable")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    made = registration_tokens.make_token(ctx)
    assert _error(_register(url, made.token)) == (429, "temporarily_unavailable")
    assert registration_tokens.store(ctx).get(made.record.token_id).uses_left == 1  # not spent: no app
    clock.advance(60)
    assert _register(url, made.token).status_code == 201


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_an_app_registered_for_signed_userinfo_gets_a_jwt_of_the_key_ring(server, alg):
    url, ctx = server
    body = {**METADATA, "userinfo_signed_response_alg": alg, "id_token_signed_response_alg": alg}
    answer = _register(url, registration_tokens.make_token(ctx).token, body).json()
    discovery = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()
    assert discovery["registration_endpoint"] == url + "/oidc/register"
    assert alg in discovery["userinfo_signing_alg_values_supported"]
    device = register_device(url)
    device.login(PASSWORD)
    request_id, verifier = waiting_request(url, answer["client_id"], redirect_uri=REDIRECT, browser=device,
                                           scope="openid profile")
    code = query_of(finish_as_device(device, request_id, consent=True))["code"]
    tokens = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": REDIRECT, "code_verifier": verifier},
                           auth=(answer["client_id"], answer["client_secret"]), timeout=10).json()
    userinfo = requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                            timeout=10)
    assert userinfo.status_code == 200 and userinfo.headers["Content-Type"] == "application/jwt", userinfo.headers
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(userinfo.text).key
    claims = jwt.decode(userinfo.text, key, algorithms=[alg], audience=answer["client_id"], issuer=url)
    assert jwt.get_unverified_header(userinfo.text)["alg"] == alg
    assert (claims["iss"], claims["aud"], claims["sub"]) == (url, answer["client_id"], device.key_file.user_uuid)
    assert "nonce" not in claims and claims["preferred_username"] == device.key_file.username
    # the same through POST, and an app without the member still answers JSON
    posted = requests.post(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                           timeout=10)
    assert posted.headers["Content-Type"] == "application/jwt"


def _tokens(url: str, answer: dict, *, scope: str, post: bool = False) -> requests.Response:
    device = register_device(url)
    device.login(PASSWORD)
    request_id, verifier = waiting_request(url, answer["client_id"], redirect_uri=REDIRECT, browser=device,
                                           scope=scope)
    code = query_of(finish_as_device(device, request_id, consent=True))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    if post:
        form.update(client_id=answer["client_id"], client_secret=answer["client_secret"])
        return requests.post(url + "/oidc/token", data=form, timeout=10)
    return requests.post(url + "/oidc/token", data=form, auth=(answer["client_id"], answer["client_secret"]),
                         timeout=10)


def test_an_app_uses_the_grant_types_it_registered_alone_and_its_secret_either_way(server):
    url, ctx = server
    code_only = _register(url, registration_tokens.make_token(ctx).token,
                          {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}).json()
    assert code_only["grant_types"] == ["authorization_code"]
    by_basic = _tokens(url, code_only, scope="openid")
    assert by_basic.status_code == 200, by_basic.text      # a secret in the header or the body, as libraries do
    issued = _tokens(url, code_only, scope="openid offline_access", post=True)
    assert issued.status_code == 200 and "refresh_token" not in issued.json()   # no refresh_token grant
    refreshing = requests.post(url + "/oidc/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": "anything", "client_id": code_only["client_id"],
        "client_secret": code_only["client_secret"]})
    assert _error(refreshing)[1] == "unauthorized_client"

    with_refresh = _register(url, registration_tokens.make_token(ctx).token, METADATA).json()
    tokens = _tokens(url, with_refresh, scope="openid offline_access").json()
    refreshed = requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": tokens["refresh_token"]},
                              auth=(with_refresh["client_id"], with_refresh["client_secret"]), timeout=10)
    assert refreshed.status_code == 200, refreshed.text


def test_registrations_racing_for_a_tokens_last_use_on_dynamodb_local_get_one_app(server):
    url, ctx = server
    made = registration_tokens.make_token(ctx, uses=1)
    racers = 8
    barrier, answers = threading.Barrier(racers), []

    def register() -> None:
        barrier.wait()
        answers.append(_register(url, made.token))

    threads = [threading.Thread(target=register) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [201] + [401] * (racers - 1), [a.text for a in answers]
    assert all(a.json()["error"] == "invalid_token" for a in answers if a.status_code == 401)
    registered = [app for app in apps.list_apps(ctx) if app.registered_with == made.record.token_id]
    assert len(registered) == 1 and registration_tokens.store(ctx).get(made.record.token_id).uses_left == 0


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
MEMBERS = st.sampled_from(["redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "jwks",
                           "jwks_uri", "client_name", "logo_uri", "contacts", "userinfo_signed_response_alg",
                           "request_uris", "request_object_signing_alg", "subject_type"])


@given(body=st.dictionaries(MEMBERS, JSON, max_size=4).map(lambda members: {**METADATA, **members}) | JSON)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_is_sent_is_an_app_or_the_standards_error_never_a_500(open_server, body):
    url, _ = open_server
    answer = requests.post(url + "/oidc/register", json=body, timeout=10)
    assert answer.status_code in (201, 400), answer.text
    if answer.status_code == 400:
        assert _error(answer)[1] in ("invalid_client_metadata", "invalid_redirect_uri")
        assert answer.json()["error_description"].split(":")[0] in (*METADATA, "request", "redirect_uris",
                                                                     "grant_types", "response_types",
                                                                     "token_endpoint_auth_method", "jwks", "jwks_uri",
                                                                     "contacts", "userinfo_signed_response_alg",
                                                                     "request_uris", "request_object_signing_alg",
                                                                     "subject_type")


@pytest.fixture(scope="module")
def open_server(dynamodb_endpoint, data_dir, table_prefix):
    """One server for every example: open registration, no address limit worth the name."""
    with app_servers(app_settings(dynamodb_endpoint, data_dir, table_prefix)) as start:
        yield start(oidc_open_registration=True, oidc_registrations_per_minute_per_ip=100_000)
