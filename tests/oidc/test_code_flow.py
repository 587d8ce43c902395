"""The OpenID Provider's code flow over HTTP (SPEC §14): discovery, authorize → the device's session
finishes it → token → userinfo; PKCE, single-use codes, exact redirects, and errors that never
redirect to an unregistered URI."""
from __future__ import annotations

import jwt
import pytest
import requests

from accounts import user_service as users
from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.fixtures import bearer_problem
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import (authorize_url, finish_as_device, pkce_pair, query_of, sign_in_page_request,
                                signed_in_tokens, stolen_request_cookies)

REDIRECT = "https://app.example/callback"


@pytest.fixture
def provider(make_server):
    """The all-in-one app whose CITYLOGIN_PUBLIC_URL, so its issuer, is its own address."""
    return make_server(host_name="127.0.0.1")


def _app(ctx, **options):
    oidc = OidcClient(redirect_uris=(REDIRECT, "http://127.0.0.1/native"), **options)
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=oidc)


def _code(url: str, device, client_id: str, *, challenge: str, **extra: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
              "scope": "openid profile email", "state": "st-1", "nonce": "n-1", "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    request_id = sign_in_page_request(authorize_url(url, **params), browser=device)
    return query_of(finish_as_device(device, request_id))


def _exchange(url: str, credentials, code: str, verifier: str, redirect_uri: str = REDIRECT) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": redirect_uri, "code_verifier": verifier},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10)


def test_discovery_names_every_endpoint_and_the_key_ring_holds_each_algorithm(provider):
    url, _ = provider
    metadata = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()
    assert metadata["issuer"] == url
    assert metadata["authorization_endpoint"] == url + "/oidc/authorize"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials",
                                                 "urn:ietf:params:oauth:grant-type:device_code"]
    assert metadata["device_authorization_endpoint"] == url + "/oidc/device_authorization"
    assert metadata["backchannel_logout_supported"] is metadata["backchannel_logout_session_supported"] is True
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert set(metadata["id_token_signing_alg_values_supported"]) == {"RS256", "ES256", "EdDSA"}
    assert requests.get(url + "/.well-known/oauth-authorization-server", timeout=10).json() == metadata
    kinds = {(key["kty"], key["alg"]) for key in requests.get(metadata["jwks_uri"], timeout=10).json()["keys"]}
    assert {("RSA", "RS256"), ("EC", "ES256"), ("OKP", "EdDSA")} <= kinds


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_code_flow_gives_tokens_of_the_devices_session_and_userinfo(provider, alg):
    url, ctx = provider
    credentials = _app(ctx, id_token_alg=alg)
    device = register_device(url)
    device.login("correct horse battery staple")
    verifier, challenge = pkce_pair()
    answer = _code(url, device, credentials.app.client_id, challenge=challenge)
    assert answer["state"] == "st-1" and answer["iss"] == url

    issued = _exchange(url, credentials, answer["code"], verifier)
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert issued.headers["Cache-Control"] == "no-store"
    jwks = jwt.PyJWKClient(url + "/.well-known/jwks.json")
    id_token = jwt.decode(tokens["id_token"], jwks.get_signing_key_from_jwt(tokens["id_token"]).key,
                          algorithms=[alg], audience=credentials.app.client_id, issuer=url)
    session = device.me()
    assert id_token["sub"] == device.key_file.user_uuid and id_token["sid"] == session["session_id"]
    assert id_token["nonce"] == "n-1" and "hwk" in id_token["amr"] and id_token["at_hash"]
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    assert access["aud"] == credentials.app.client_id and access["sid"] == session["session_id"]

    userinfo = requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                            timeout=10)
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == device.key_file.user_uuid
    assert userinfo.json()["preferred_username"] == device.key_file.username
    # an app's token is not citylogin's own: it opens none of citylogin's routes
    assert requests.get(url + "/session/me", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=10).status_code == 401

    device.logout()
    gone = requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=10)
    assert gone.status_code == 401 and gone.json()["code"] == "session_revoked"


def test_userinfo_of_an_account_whose_deletion_began_is_401_invalid_token(provider):
    """The deletion's first write (the account's deleting state) comes before it ends the sessions: a
    userinfo call in between finds the session live and no account. The token is refused as any token that
    names nobody, 401 invalid_token with its challenge: never a 410 an app would not read as "signed out"."""
    url, ctx = provider
    credentials = _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    token = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)["access_token"]
    asked = {"Authorization": f"Bearer {token}"}
    assert requests.get(url + "/oidc/userinfo", headers=asked, timeout=10).status_code == 200
    assert users.begin_deletion(ctx, user_uuid=device.require_key_file().user_uuid, holds_admin=False)
    for method in ("GET", "POST"):
        answer = requests.request(method, url + "/oidc/userinfo", headers=asked, timeout=10)
        assert bearer_problem(answer)[:2] == (401, "invalid_token"), answer.text


def test_a_code_works_once_and_only_with_its_verifier_client_and_redirect(provider):
    url, ctx = provider
    credentials, other = _app(ctx), _app(ctx)
    device = register_device(url)
    device.login("correct horse battery staple")
    verifier, challenge = pkce_pair()

    code = _code(url, device, credentials.app.client_id, challenge=challenge)["code"]
    wrong_verifier = _exchange(url, credentials, code, pkce_pair()[0])
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    assert _exchange(url, other, code, verifier).json()["error"] == "invalid_grant"  # another app's code
    moved = _exchange(url, credentials, code, verifier, redirect_uri="https://app.example/other")
    assert moved.json()["error"] == "invalid_grant"
    # none of the failed attempts spent it (tests/oidc/token/test_code_redemption.py has each on its own)
    assert _exchange(url, credentials, code, verifier).status_code == 200
    replay = _exchange(url, credentials, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"

    wrong_secret = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": "x" * 43,
                                                            "redirect_uri": REDIRECT, "code_verifier": verifier},
                                 auth=(credentials.app.client_id, "wrong"), timeout=10)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"


def test_unknown_clients_and_redirects_get_a_page_other_errors_go_back_with_iss(provider):
    url, ctx = provider
    credentials = _app(ctx)
    client_id = credentials.app.client_id
    _, challenge = pkce_pair()
    base = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
            "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
    for bad in ({"client_id": "app_unknown"}, {"redirect_uri": "https://evil.example/cb"},
                {"redirect_uri": REDIRECT + "/"}, {"redirect_uri": "http://127.0.0.1:4000/other"}):
        answer = requests.get(authorize_url(url, **{**base, **bad}), allow_redirects=False, timeout=10)
        assert answer.status_code == 400 and "Location" not in answer.headers, bad

    for bad, error in (({"code_challenge": ""}, "invalid_request"), ({"code_challenge_method": "plain"},
                       "invalid_request"), ({"response_type": "token"}, "unsupported_response_type")):
        answer = requests.get(authorize_url(url, **{**base, **bad}), allow_redirects=False, timeout=10)
        assert answer.status_code == 303, (bad, answer.text)
        query = query_of(answer.headers["Location"])
        assert answer.headers["Location"].startswith(REDIRECT + "?")
        assert (query["error"], query["state"], query["iss"]) == (error, "s", url), bad


def test_a_native_apps_loopback_redirect_matches_on_any_port(provider):
    url, ctx = provider
    credentials = _app(ctx, public=True)
    assert credentials.client_secret == ""
    device = register_device(url)
    device.login("correct horse battery staple")
    verifier, challenge = pkce_pair()
    redirect_uri = "http://127.0.0.1:53117/native"
    params = {"response_type": "code", "client_id": credentials.app.client_id, "redirect_uri": redirect_uri,
              "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
    location = finish_as_device(device, sign_in_page_request(authorize_url(url, **params), browser=device))
    assert location.startswith(redirect_uri + "?")
    issued = requests.post(url + "/oidc/token", data={
        "grant_type": "authorization_code", "code": query_of(location)["code"], "redirect_uri": redirect_uri,
        "code_verifier": verifier, "client_id": credentials.app.client_id}, timeout=10)
    assert issued.status_code == 200, issued.text


def test_a_second_code_of_one_request_is_a_replay_of_the_first(provider):
    """Finishing a request writes nothing (the code is sealed): answered twice, it gives two codes, and
    the redemption of the second, after the first's, is a replay that revokes what the first gave — also
    when another browser, signed in as someone else, finished the same request (its id leaked, and its
    cookie was stolen too: without the cookie it gets nothing, test_browser_binding)."""
    url, ctx = provider
    credentials = _app(ctx)
    device = register_device(url)
    device.login("correct horse battery staple")
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": credentials.app.client_id, "redirect_uri": REDIRECT,
              "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
    request_id = sign_in_page_request(authorize_url(url, **params), browser=device)
    first, second = (query_of(finish_as_device(device, request_id))["code"] for _ in range(2))
    assert first != second
    issued = _exchange(url, credentials, first, verifier)
    assert issued.status_code == 200
    third = query_of(finish_as_device(device, request_id))["code"]  # still the request's: a replay too
    for replayed in (_exchange(url, credentials, code, verifier) for code in (second, third)):
        assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")
    assert requests.get(url + "/oidc/userinfo", timeout=10, headers={
        "Authorization": f"Bearer {issued.json()['access_token']}"}).status_code == 401
    unknown = device.request("POST", "/oidc/authorize/complete", json={"request": "x" * 32})
    assert unknown.status_code == 400 and unknown.json()["code"] == "oidc_request_unknown"
    unsigned = requests.post(url + "/oidc/authorize/complete", json={"request": request_id}, timeout=10)
    assert unsigned.status_code == 401

    someone_else = register_device(url)
    someone_else.login("correct horse battery staple")
    request_id = sign_in_page_request(authorize_url(url, **params), browser=device)
    stolen_request_cookies(device, someone_else)
    mine, theirs = (query_of(finish_as_device(browser, request_id))["code"] for browser in (device, someone_else))
    issued = _exchange(url, credentials, mine, verifier)
    assert issued.status_code == 200
    replayed = _exchange(url, credentials, theirs, verifier)
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")
    assert requests.get(url + "/oidc/userinfo", timeout=10, headers={
        "Authorization": f"Bearer {issued.json()['access_token']}"}).status_code == 401


def test_a_request_cancelled_after_its_code_was_redeemed_keeps_its_other_codes_spent(provider):
    """The request's redemption mark is an item of its own: cancelling the request (in the browser that
    started it) after a code of it was redeemed leaves the mark, so another browser's code of the same
    request (its id and cookie stolen), on another session, is still a replay."""
    url, ctx = provider
    credentials = _app(ctx)
    device, someone_else = register_device(url), register_device(url)
    for browser in (device, someone_else):
        browser.login("correct horse battery staple")
    verifier, challenge = pkce_pair()
    request_id = sign_in_page_request(authorize_url(
        url, response_type="code", client_id=credentials.app.client_id, redirect_uri=REDIRECT, scope="openid",
        code_challenge=challenge, code_challenge_method="S256"), browser=device)
    stolen_request_cookies(device, someone_else)
    mine, theirs = (query_of(finish_as_device(browser, request_id))["code"] for browser in (device, someone_else))
    issued = _exchange(url, credentials, mine, verifier)
    assert issued.status_code == 200, issued.text
    cancelled = device.http.post(url + "/oidc/authorize/cancel", json={"request": request_id}, timeout=10)
    assert cancelled.status_code == 200, cancelled.text
    replayed = _exchange(url, credentials, theirs, verifier)
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")
    assert requests.get(url + "/oidc/userinfo", timeout=10, headers={
        "Authorization": f"Bearer {issued.json()['access_token']}"}).status_code == 401


def test_scope_values_not_understood_are_ignored_and_never_granted(provider):
    """OpenID Connect Core §3.1.2.1: `address`, `phone` or the admin API's `admin` in an app's request are
    ignored, not refused: the person signs in, and the tokens carry only the scopes citylogin knows."""
    url, ctx = provider
    credentials = _app(ctx)
    device = register_device(url)
    device.login("correct horse battery staple")
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid admin address phone")
    assert tokens["scope"] == "openid"
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "openid" and claims["aud"] == credentials.app.client_id
