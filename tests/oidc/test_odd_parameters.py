"""No input is a 500 anywhere under /oidc (SPEC §14), property-based: the form fields of every endpoint
filled with what an attacker sends — odd characters ("\\", quotes, DEL, NUL, CR LF, non-ASCII letters,
percent-encodings), over-long values, repeated and missing parameters, odd names and Authorization
headers — on the app in-process (Flask's test client). A few fields of a valid request are edited at a
time, so that most requests pass the early refusals and carry their odd value to what lies behind them
(Authlib's checks, the sealed code, the refresh token that carries its grant). Each answer is the
standard's: an error page (problem+json) or a redirect at /oidc/authorize, RFC 6749 JSON at PAR, token
and revocation."""
from __future__ import annotations

import base64
import uuid
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.app import create_app
from oidc.token import codes
from oidc.token import refresh_tokens as refresh
from oidc.core.models import Code, SignedIn
from tests.conftest import FAST_ARGON2, RAISED_LIMITS
from tests.support.oidc import ERROR_PAGE_CODE, pkce_pair

REDIRECT = "https://app.example/callback"
LOOPBACK = "http://127.0.0.1/callback"
EXAMPLES = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def oidc(dynamodb_endpoint, data_dir, table_prefix):
    """The all-in-one app in-process, with a confidential and a public client."""
    app = create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                      "table_prefix": table_prefix, "log_level": "CRITICAL", **FAST_ARGON2, **RAISED_LIMITS,
                      "deletion_sweep_interval": 0, "ssf_push_interval": 0, "session_sweep_interval": 0})
    ctx = app.extensions["citylogin"]
    confidential = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    public = apps.add_app(ctx, name="Native", push_url=None, oidc=OidcClient(redirect_uris=(LOOPBACK,), public=True))
    return app.test_client(), confidential, public


ODD = st.sampled_from(["\\", '"', "\x7f", "é", "\x00", "\r\n", "\t", " ", "#", "%", "%00", "%ff", "@evil.example",
                       "\u2028", "\ufeff", "ı", "＼", "../", "'", "<script>", "\x85", "\U0001f600", ""])
LONG = st.sampled_from(["x" * 4097, "é" * 4097, "a b" * 1400, "%" * 4100])
TOO_LARGE = 413  # a body over 64 KiB is refused before it is read, whatever the endpoint
DESCRIBABLE = frozenset(chr(c) for c in (0x20, 0x21, *range(0x23, 0x5c), *range(0x5d, 0x7f)))  # RFC 6749 §5.2


def _mutated(value: str) -> st.SearchStrategy[str]:
    """`value` with odd characters put in or cut short, or something else entirely."""
    inserted = st.builds(lambda at, odd: value[:at] + odd + value[at:], st.integers(0, len(value)), ODD)
    cut = st.integers(0, max(len(value) - 1, 0)).map(lambda at: value[:at])
    return st.one_of(inserted, cut, ODD, LONG, st.text(max_size=30))


@st.composite
def fields(draw: st.DrawFn, valid: dict[str, str]) -> MultiDict[str, str]:
    """A form around `valid`: one to three fields left out, repeated or mutated, the others sent once as
    they are (were every field edited, nearly every request would stop at the first refusal and never
    carry an odd value further); sometimes an odd extra parameter."""
    edited = draw(st.permutations(list(valid)))[:draw(st.integers(1, 3))]
    pairs: list[tuple[str, str]] = []
    for name, value in valid.items():
        if name not in edited:
            pairs.append((name, value))
            continue
        for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2]))):
            pairs.append((name, draw(st.one_of(st.just(value), _mutated(value)))))
    if draw(st.integers(0, 4)) == 0:
        pairs.append((draw(st.one_of(ODD, st.text(max_size=8), st.sampled_from(["request", "response_mode",
                                                                                   "prompt", "request_uri"]))),
                      draw(_mutated("x"))))
    return MultiDict(pairs)


def _authorization(client_id: str, redirect_uri: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": "openid",
            "state": "st", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
            "prompt": "login", "max_age": "60", "response_mode": "query", "login_hint": "ada"}


AUTHORIZATION_HEADERS = st.one_of(
    st.none(), st.just("Basic"),
    st.sampled_from(["Basic !!!", "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(), "Bearer x", "DPoP",
                     "Basic " + base64.b64encode(b"no-colon").decode()]),
    st.binary(max_size=40).map(lambda raw: "Basic " + base64.b64encode(raw).decode()))


def _assert_authorize_answer(response, base_url: str) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code == TOO_LARGE:
        return
    if response.status_code == 303:
        location = response.headers["Location"]
        to_app = location.startswith((REDIRECT + "?", LOOPBACK.replace("/callback", "")))
        assert to_app or urlsplit(location).fragment.startswith("oidc="), location
        return
    assert response.headers["Content-Type"].startswith("text/html"), response.headers["Content-Type"]
    page = response.get_data(as_text=True)
    if response.status_code == 200:  # a refusal the app asked for by form_post (oidc.core.pages.form_post_page)
        assert '<form id="oidc-response" method="post"' in page and 'name="error"' in page, page[:500]
        return
    assert response.status_code == 400, response.status_code
    assert ERROR_PAGE_CODE.search(page), page[:500]  # an error page (oidc.core.pages.error_page)


# The errors the back-channel endpoints may answer: RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 9126 §2.3 (the
# authorization request's own), RFC 9449 §7.1; never a code of citylogin's own API.
OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                          "unsupported_grant_type", "invalid_scope", "unsupported_token_type", "invalid_request_object",
                          "unsupported_response_type", "invalid_dpop_proof", "use_dpop_nonce",
                          "temporarily_unavailable"})  # 429 at PAR, with Retry-After (RFC 9126 §2.3)


def _assert_rfc6749_answer(response) -> None:
    """RFC 6749 §5.2: JSON with an `error` of the standards' list (400, or 401 with WWW-Authenticate for
    invalid_client), never problem+json, never a 500."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    if response.status_code >= 400:
        body = response.get_json()
        assert body["error"] in OAUTH_ERRORS, body
        assert response.status_code in (400, 401, 429, TOO_LARGE), (response.status_code, body)
        assert response.status_code != 401 or response.headers.get("WWW-Authenticate"), body
        description = body.get("error_description", "")
        assert isinstance(description, str) and all(c in DESCRIBABLE for c in description), description


@given(data=st.data())
@EXAMPLES
def test_authorize_get_and_post(oidc, data):
    client, confidential, public = oidc
    app = data.draw(st.sampled_from([confidential, public]))
    redirect_uri = REDIRECT if app is confidential else LOOPBACK
    form = data.draw(fields(_authorization(app.app.client_id, redirect_uri)))
    if data.draw(st.booleans()):
        response = client.get("/oidc/authorize", query_string=form)
    else:
        response = client.post("/oidc/authorize", data=form)
    _assert_authorize_answer(response, "")


@given(raw=st.lists(st.sampled_from(["redirect_uri=%FF", "response_type=%C3", "client_id=%00", "scope=%E2%80",
                                     "state=%ZZ", "&&", "=", "request_uri=urn%3A", "%FF=%FE", "a"]), max_size=6))
@EXAMPLES
def test_authorize_with_bytes_that_are_no_utf8(oidc, raw):
    client, confidential, _ = oidc
    response = client.get("/oidc/authorize", query_string=f"client_id={confidential.app.client_id}&" + "&".join(raw))
    _assert_authorize_answer(response, "")


@given(data=st.data())
@EXAMPLES
def test_par(oidc, data):
    client, confidential, public = oidc
    form = data.draw(fields(_authorization(confidential.app.client_id, REDIRECT)))
    basic = "Basic " + base64.b64encode(f"{confidential.app.client_id}:{confidential.client_secret}".encode()).decode()
    header = data.draw(st.one_of(st.just(basic), AUTHORIZATION_HEADERS))
    response = client.post("/oidc/par", data=form, headers={"Authorization": header} if header else {})
    _assert_rfc6749_answer(response)


def _sealed_code(ctx, *, app, redirect_uri: str, challenge: str) -> str:
    """A live code as /oidc/authorize/complete gives it, of a session that does not exist: its redemption
    passes every check but the session's, in the transaction that would spend it."""
    now = int(ctx.now().timestamp())
    code = Code(client_id=app.app.client_id, redirect_uri=redirect_uri, scope="openid offline_access",
                code_challenge=challenge, code_challenge_method="S256", user_uuid=str(uuid.uuid4()),
                session_id=str(uuid.uuid4()), device_id=str(uuid.uuid4()), auth_time=now,
                amr=["hwk", "pwd"], person={}, session_expires_epoch=now + 3600, request_digest="r" * 64)
    return codes.seal(ctx.refresh_secrets, code, now=now)


def _carried_refresh_token(ctx, *, client_id: str) -> str:
    """A refresh token of the sealed form under its MAC, of a grant that does not exist (its rotation's write
    is refused)."""
    user = SignedIn(user_uuid=str(uuid.uuid4()), session_id=str(uuid.uuid4()), device_id=str(uuid.uuid4()),
                    auth_time=0, amr=("pwd",), refresh_generation=2, grant_id=refresh.new_grant_id(),
                    grant_scope="openid offline_access")
    return refresh.token_text(ctx.refresh_secrets, user, client_id=client_id)


@given(data=st.data())
@EXAMPLES
def test_token(oidc, data):
    client, confidential, public = oidc
    ctx = client.application.extensions["citylogin"]
    verifier, challenge = pkce_pair()
    valid = data.draw(st.sampled_from([
        {"grant_type": "authorization_code", "redirect_uri": REDIRECT,
         "code": _sealed_code(ctx, app=confidential, redirect_uri=REDIRECT, challenge=challenge),
         "code_verifier": verifier, "client_id": confidential.app.client_id,
         "client_secret": confidential.client_secret},
        {"grant_type": "authorization_code", "redirect_uri": LOOPBACK,
         "code": _sealed_code(ctx, app=public, redirect_uri=LOOPBACK, challenge=challenge),
         "code_verifier": verifier, "client_id": public.app.client_id},
        {"grant_type": "refresh_token", "refresh_token": _carried_refresh_token(ctx, client_id=public.app.client_id),
         "scope": "openid", "client_id": public.app.client_id},
        {"grant_type": "client_credentials", "scope": "admin", "client_assertion": "a.b.c", "client_id": "x",
         "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}]))
    form = data.draw(fields(valid))
    # now and then an odd header: each is refused before the grant is looked at
    header = data.draw(AUTHORIZATION_HEADERS) if data.draw(st.integers(0, 3)) == 0 else None
    dpop = data.draw(st.sampled_from(["x", "a.b.c"])) if data.draw(st.integers(0, 3)) == 0 else None
    headers = {**({"Authorization": header} if header else {}), **({"DPoP": dpop} if dpop else {})}
    _assert_rfc6749_answer(client.post("/oidc/token", data=form, headers=headers))


@given(data=st.data())
@EXAMPLES
def test_revocation(oidc, data):
    client, confidential, public = oidc
    ctx = client.application.extensions["citylogin"]
    token = _carried_refresh_token(ctx, client_id=public.app.client_id)
    form = data.draw(fields({"token": token, "token_type_hint": "refresh_token", "client_id": public.app.client_id}))
    header = data.draw(AUTHORIZATION_HEADERS)
    _assert_rfc6749_answer(client.post("/oidc/revoke", data=form, headers={"Authorization": header} if header else {}))


@given(data=st.data())
@EXAMPLES
def test_logout_and_userinfo(oidc, data):
    client, confidential, _ = oidc
    form = data.draw(fields({"id_token_hint": "a.b.c", "client_id": confidential.app.client_id, "state": "st",
                             "post_logout_redirect_uri": "https://app.example/", "ui_locales": "en"}))
    logout = client.get("/oidc/logout", query_string=form) if data.draw(st.booleans()) else \
        client.post("/oidc/logout", data=form)
    assert logout.status_code < 500 and logout.status_code in (303, 400, TOO_LARGE), logout.status_code
    header = data.draw(st.one_of(AUTHORIZATION_HEADERS, st.sampled_from(["Bearer a.b.c", "DPoP a.b.c", "Bearer "])))
    userinfo = client.post("/oidc/userinfo", data=data.draw(fields({"access_token": "a.b.c"})),
                           headers={"Authorization": header} if header else {})
    assert userinfo.status_code in (400, 401, TOO_LARGE), userinfo.status_code


JSON_VALUES = st.one_of(st.text(max_size=40), ODD, LONG, st.integers(), st.booleans(), st.none(),
                        st.lists(st.text(max_size=5), max_size=2), st.dictionaries(st.text(max_size=5), st.none(),
                                                                                     max_size=2))


@given(path=st.sampled_from(["/oidc/interaction", "/oidc/authorize/complete", "/oidc/authorize/cancel",
                             "/oidc/authorize/device"]),
       body=st.dictionaries(st.sampled_from(["request", "consent", "error", "client_cert", "challenge", "signature"]),
                            JSON_VALUES, max_size=6),
       header=AUTHORIZATION_HEADERS)
@EXAMPLES
def test_the_sign_in_pages_calls(oidc, path, body, header):
    client, _, _ = oidc
    response = client.post(path, json=body, headers={"Authorization": header} if header else {})
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    assert response.headers["Content-Type"].startswith("application/problem+json")
