"""The standard's refusals (SPEC §14 Authorize): a repeated parameter, two client authentication
methods, a request object, an unsupported response_mode or prompt value, and an unsupported token type
at revocation. At /oidc/authorize the error goes back to the app once its redirect URI is trusted
(with `state` and `iss`), else to an error page; at PAR, token and revocation it is RFC 6749 JSON."""
from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.conftest import app_settings
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import code_for, error_page, pkce_pair, query_of

REDIRECT = "https://app.example/callback"


@pytest.fixture(scope="module")
def server(dynamodb_endpoint, data_dir, table_prefix):
    """One all-in-one app for the module, an app registered on it, and a signed-in device."""
    config = app_settings(dynamodb_endpoint, data_dir, table_prefix)
    with app_servers(config) as start:
        url, ctx = start(host_name="127.0.0.1")
        credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
        device = register_device(url)
        device.login(PASSWORD)
        yield url, credentials, device


def _authorization(client_id: str, **extra: str) -> list[tuple[str, str]]:
    _, challenge = pkce_pair()
    return [*{"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
              "state": "st", "code_challenge": challenge, "code_challenge_method": "S256", **extra}.items()]


def _authorize(url: str, params: list[tuple[str, str]], *, method: str = "GET") -> requests.Response:
    if method == "GET":
        return requests.get(f"{url}/oidc/authorize?{urlencode(params)}", allow_redirects=False, timeout=10)
    return requests.post(f"{url}/oidc/authorize", data=params, allow_redirects=False, timeout=10)


def _back_at_app(response: requests.Response, url: str) -> str:
    """The `error` of a refusal sent back to the app, with the state and the issuer (RFC 9207)."""
    assert response.status_code == 303, (response.status_code, response.text[:300])
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    answer = query_of(location)
    assert answer["iss"] == url and answer.get("state") in ("st", None), answer
    return answer["error"]


def _error_page(response: requests.Response) -> str:
    """An error page for the person: never a redirect, the RFC 6749 error named for the developer."""
    return error_page(response)


def _json_error(response: requests.Response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()["error"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_repeated_parameter_is_invalid_request_at_authorize(server, method):
    url, credentials, _ = server
    client_id = credentials.app.client_id
    for name, value in (("scope", "openid profile"), ("response_type", "code"), ("code_challenge_method", "S256"),
                        ("nonce", "n"), ("prompt", "login")):
        sent = _authorization(client_id, **({"nonce": "n1"} if name == "nonce" else {}),
                              **({"prompt": "login"} if name == "prompt" else {})) + [(name, value)]
        assert _back_at_app(_authorize(url, sent, method=method), url) == "invalid_request", name
    state_twice = _authorization(client_id) + [("state", "other")]
    refused = _authorize(url, state_twice, method=method)
    assert _back_at_app(refused, url) == "invalid_request" and "state" not in query_of(refused.headers["Location"])
    for name, value in (("client_id", client_id), ("redirect_uri", REDIRECT), ("redirect_uri", "https://x.example/")):
        # which client, or where to: nothing is trusted yet
        assert _error_page(_authorize(url, _authorization(client_id) + [(name, value)], method=method)) == \
            "invalid_request", name
    assert _authorize(url, _authorization(client_id), method=method).status_code == 303  # sent once: the sign-in


def test_a_repeated_parameter_is_invalid_request_at_par_token_and_revocation(server):
    url, credentials, device = server
    auth = (credentials.app.client_id, credentials.client_secret)
    pushed = requests.post(url + "/oidc/par", data=_authorization(credentials.app.client_id) + [("scope", "openid")],
                           auth=auth, timeout=10)
    assert _json_error(pushed) == "invalid_request"

    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT)
    form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT),
            ("code_verifier", verifier)]
    for repeated in (("code", code), ("grant_type", "authorization_code"), ("code_verifier", verifier)):
        twice = requests.post(url + "/oidc/token", data=form + [repeated], auth=auth, timeout=10)
        assert _json_error(twice) == "invalid_request", repeated
    across = requests.post(url + "/oidc/token?grant_type=authorization_code", data=form, auth=auth, timeout=10)
    assert _json_error(across) == "invalid_request"   # once in the query and once in the body is twice too
    tokens = requests.post(url + "/oidc/token", data=form, auth=auth, timeout=10)
    assert tokens.status_code == 200, tokens.text     # the refusals spent nothing

    revoked = requests.post(url + "/oidc/revoke", data=[("token", tokens.json()["access_token"]), ("token", "x")],
                            auth=auth, timeout=10)
    assert _json_error(revoked) == "invalid_request"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_two_client_authentication_methods_are_invalid_request_even_when_both_are_right(server):
    url, credentials, device = server
    client_id, secret = credentials.app.client_id, credentials.client_secret
    assertion = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                 "client_assertion": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}
    code, verifier = code_for(url, client_id, device, redirect_uri=REDIRECT)
    token_form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    for headers, extra in ((_basic(client_id, secret), {"client_id": client_id, "client_secret": secret}),
                           (_basic(client_id, secret), assertion),
                           ({}, {"client_id": client_id, "client_secret": secret, **assertion})):
        for path, form in (("/oidc/token", token_form), ("/oidc/revoke", {"token": "anything"}),
                           ("/oidc/par", dict(_authorization(client_id)))):
            refused = requests.post(url + path, data={**form, **extra}, headers=headers, timeout=10)
            assert _json_error(refused) == "invalid_request", (path, sorted(extra), bool(headers))
    one = requests.post(url + "/oidc/token", data=token_form, headers=_basic(client_id, secret), timeout=10)
    assert one.status_code == 200, one.text           # one method: the code still redeems
    unreadable = requests.post(url + "/oidc/revoke", data={"token": "x"}, timeout=10,
                               headers={"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode()})
    assert _json_error(unreadable, 401) == "invalid_client"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unsigned_request_object_is_invalid_request_object_from_an_app_that_does_not_allow_them(server, method):
    """Request objects are supported (tests/oidc/authorization/test_request_objects.py); an unsigned one (alg none) is
    refused unless the app allows it, with the object's own state."""
    url, credentials, _ = server
    request_object = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."
    sent = _authorization(credentials.app.client_id, request=request_object)
    assert _back_at_app(_authorize(url, sent, method=method), url) == "invalid_request_object"
    pushed = requests.post(url + "/oidc/par", data=sent, timeout=10,
                           auth=(credentials.app.client_id, credentials.client_secret))
    assert _json_error(pushed) == "invalid_request_object"


@pytest.mark.parametrize("extra", [{"response_mode": "form_post "}, {"response_mode": "fragment"},
                                   {"response_mode": "query.jwt"}, {"prompt": "select_account"},
                                   {"prompt": "none login"}, {"prompt": "consent none"}, {"prompt": "create"},
                                   {"max_age": "soon"}])
def test_an_unsupported_response_mode_or_prompt_is_invalid_request(server, extra):
    url, credentials, _ = server
    sent = _authorization(credentials.app.client_id, **extra)
    assert _back_at_app(_authorize(url, sent), url) == "invalid_request"
    pushed = requests.post(url + "/oidc/par", data=sent, timeout=10,
                           auth=(credentials.app.client_id, credentials.client_secret))
    assert _json_error(pushed) == "invalid_request"


@pytest.mark.parametrize("extra", [{"response_mode": "query"}, {"response_mode": "form_post"},
                                   {"prompt": "login consent"}, {"prompt": "none"},
                                   {"prompt": "consent"}, {"max_age": "0"}])
def test_what_is_supported_goes_on_to_the_sign_in(server, extra):
    url, credentials, _ = server
    accepted = _authorize(url, _authorization(credentials.app.client_id, **extra))
    assert accepted.status_code == 303 and "#oidc=" in accepted.headers["Location"], accepted.headers.get("Location")


def test_an_unsupported_token_type_hint_is_400_at_revocation(server):
    url, credentials, _ = server
    auth = (credentials.app.client_id, credentials.client_secret)
    refused = requests.post(url + "/oidc/revoke", data={"token": "x", "token_type_hint": "id_token"}, auth=auth,
                            timeout=10)
    assert _json_error(refused) == "unsupported_token_type"
    assert "WWW-Authenticate" not in refused.headers
    for hint in ("access_token", "refresh_token"):
        assert requests.post(url + "/oidc/revoke", data={"token": "x", "token_type_hint": hint}, auth=auth,
                             timeout=10).status_code == 200


def test_odd_characters_are_an_error_page_before_the_redirect_is_trusted_and_a_redirect_after(server):
    url, credentials, _ = server
    client_id = credentials.app.client_id
    for odd in ("\\", '"', "\x7f", "é", "\x00", " ", "#x"):
        # the issue's 500s: a redirect_uri or response_type holding \, ", DEL or a non-ASCII letter
        assert _error_page(_authorize(url, _authorization(client_id, redirect_uri=REDIRECT + odd))) == \
            "invalid_request", odd
        assert _back_at_app(_authorize(url, _authorization(client_id, response_type="code" + odd)), url) in \
            ("invalid_request", "unsupported_response_type"), odd
        if odd not in ("#x",):  # "#" is a scope character (RFC 6749 A.4): an unknown scope, ignored
            assert _back_at_app(_authorize(url, _authorization(client_id, scope="openid" + odd)), url) == \
                "invalid_request", odd
        pushed = requests.post(url + "/oidc/par", data=_authorization(client_id, response_type="code" + odd),
                               auth=(client_id, credentials.client_secret), timeout=10)
        assert pushed.status_code == 400 and pushed.json()["error"] in ("invalid_request", "unsupported_response_type")
    long = _authorize(url, _authorization(client_id, nonce="n" * 5000))
    assert _back_at_app(long, url) == "invalid_request"
    too_long_client = [(name, "app_" + "x" * 5000 if name == "client_id" else value)
                       for name, value in _authorization(client_id)]
    assert _error_page(_authorize(url, too_long_client)) == "invalid_request"
