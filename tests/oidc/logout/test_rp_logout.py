"""RP-Initiated Logout (SPEC §14): an app sends the browser to /oidc/logout. A hint alone ends nothing: the
request is kept behind a one-time handle and the browser goes to the web UI (`/#oidc-logout=<handle>`), so a
server's GET with a good `id_token_hint`, or a cross-site POST, leaves the session live. The session ends
without a question only when this browser's device proves with its key that its live session is the one the
hint names; then the browser goes on to the registered post-logout URI with `state`, and every app of the
session hears so by back channel. Any other device session ends only once the person confirmed. An
expired hint still names its session, and still ends nothing without the proof. An unregistered URI is
an error page, never followed, and so is a hint that does not check out. An ending DynamoDB refuses leaves
the session and the request to a retry."""
from __future__ import annotations

import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import error_page, sign_out_as_device, sign_out_page_request, signed_in_tokens
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until

REDIRECT = "https://app.example/callback"
AFTER_LOGOUT = "https://app.example/signed-out"


@pytest.fixture
def sink():
    with receiver() as url:
        yield url


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1", ssf_push_interval=0.2)


def _app(ctx, name: str = "Notes", backchannel: str | None = None):
    return apps.add_app(ctx, name=name, push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), post_logout_redirect_uris=(AFTER_LOGOUT,), backchannel_logout_uri=backchannel))


def _signed_in(url: str, credentials, device) -> dict:
    return signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)


def _logout(url: str, **params: str) -> requests.Response:
    return requests.get(url + "/oidc/logout", params=params, allow_redirects=False, timeout=10)


def _kept(url: str, answer: requests.Response) -> str:
    """The handle of a logout request that checked out: a 303 to the web UI's sign-out page."""
    assert answer.status_code == 303, answer.text
    assert answer.headers["Location"].startswith(url + "/#oidc-logout=")
    return sign_out_page_request(answer.headers["Location"])


def _userinfo(url: str, access_token: str) -> int:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10).status_code


def _interaction(url: str, request_id: str) -> requests.Response:
    return requests.post(url + "/oidc/logout/interaction", json={"request": request_id}, timeout=10)


def test_a_hint_alone_ends_nothing_neither_a_servers_get_nor_a_cross_site_post(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)
    hint = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT, "state": "s-9",
            "client_id": credentials.app.client_id}

    fetched = _logout(url, **hint)                       # a server's GET, which no page ever runs
    posted = requests.post(url + "/oidc/logout", data=hint, allow_redirects=False, timeout=10,
                           headers={"Origin": "https://evil.example", "Referer": "https://evil.example/"})
    first, second = _kept(url, fetched), _kept(url, posted)
    assert first != second                              # one handle per request
    assert tokens["id_token"] not in fetched.headers["Location"]
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, tokens["access_token"]) == 200
    assert _interaction(url, first).json() == {"client_id": credentials.app.client_id, "client_name": "Notes",
                                               "redirect_to": AFTER_LOGOUT + "?state=s-9"}


def test_the_device_proving_the_hinted_session_ends_it_and_every_app_hears(provider, sink):
    url, ctx = provider
    notes, diary = _app(ctx, "Notes", sink + "/backchannel"), _app(ctx, "Diary", sink + "/backchannel")
    device = register_device(url)
    device.login(PASSWORD)
    session_id = device.session_id
    tokens, _ = _signed_in(url, notes, device), _signed_in(url, diary, device)
    request_id = _kept(url, _logout(url, id_token_hint=tokens["id_token"], post_logout_redirect_uri=AFTER_LOGOUT,
                                    state="s-9", client_id=notes.app.client_id))

    answer = sign_out_as_device(url, device, request_id)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"redirect_to": AFTER_LOGOUT + "?state=s-9"}
    assert _userinfo(url, tokens["access_token"]) == 401
    me = device.request("GET", "/session/me")
    assert me.status_code == 401 and me.json()["reason"] == "logged_out"

    def heard() -> set[tuple[str, str]] | None:
        told = {(c["aud"], c["sid"]) for c in (jwt.decode(t, options={"verify_signature": False})
                                               for t in received(sink)["sets"])}
        return told if len(told) >= 2 else None
    assert wait_until(heard, timeout=15, what="both apps' logout tokens") == {
        (notes.app.client_id, session_id), (diary.app.client_id, session_id)}

    # The request is used up, and the session it named is over
    again = sign_out_as_device(url, device, request_id)
    assert again.status_code == 400 and again.json()["code"] == "oidc_logout_unknown"
    assert _interaction(url, request_id).json()["code"] == "oidc_logout_unknown"


def test_a_device_whose_live_session_is_another_is_asked_and_only_a_yes_ends_it(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device, someone_else = register_device(url), register_device(url)
    device.login(PASSWORD)
    someone_else.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)
    hinted = _kept(url, _logout(url, id_token_hint=tokens["id_token"], post_logout_redirect_uri=AFTER_LOGOUT))

    # Another person's device with a live session: not the hinted one, so it is asked
    asked = sign_out_as_device(url, someone_else, hinted)
    assert asked.status_code == 403 and asked.json()["code"] == "logout_confirmation_required"
    assert someone_else.request("GET", "/session/me").status_code == 200

    # The same device signed in again since: a new session, not the one the hint named
    device.logout()
    device.login(PASSWORD)
    assert sign_out_as_device(url, device, hinted).json()["code"] == "logout_confirmation_required"
    assert device.request("GET", "/session/me").status_code == 200
    yes = sign_out_as_device(url, device, hinted, confirm=True)
    assert yes.status_code == 200 and yes.json() == {"redirect_to": AFTER_LOGOUT}
    assert device.request("GET", "/session/me").json()["reason"] == "logged_out"
    assert someone_else.request("GET", "/session/me").status_code == 200

    # Without a hint nothing is named: asked, and no redirect back (nothing proves the app sent it)
    unhinted = _kept(url, _logout(url, client_id=credentials.app.client_id, post_logout_redirect_uri=AFTER_LOGOUT))
    assert _interaction(url, unhinted).json() == {"client_id": credentials.app.client_id, "client_name": "Notes",
                                                  "redirect_to": None}
    assert sign_out_as_device(url, someone_else, unhinted).json()["code"] == "logout_confirmation_required"
    assert sign_out_as_device(url, someone_else, unhinted, confirm=True).json() == {"redirect_to": None}
    assert someone_else.request("GET", "/session/me").status_code == 401


def test_no_live_session_or_no_fresh_signature_for_the_sign_out_ends_nothing(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device, idle = register_device(url), register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)
    request_id = _kept(url, _logout(url, id_token_hint=tokens["id_token"]))
    none_here = sign_out_as_device(url, idle, request_id)           # registered, never logged in
    assert none_here.status_code == 401 and none_here.json()["code"] == "login_required"
    for purpose in ("citylogin-sso:", "citylogin-login:"):          # another purpose's signature
        refused = sign_out_as_device(url, device, request_id, purpose=purpose, confirm=True)
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_proof", purpose
    unknown = sign_out_as_device(url, device, "x" * 32, confirm=True)
    assert unknown.status_code == 400 and unknown.json()["code"] == "oidc_logout_unknown"
    assert device.request("GET", "/session/me").status_code == 200
    assert sign_out_as_device(url, device, request_id).status_code == 200   # the request still waited


def test_an_expired_hint_still_names_its_session_but_only_the_proof_ends_it(provider):
    """The standard asks to accept an expired ID token as a hint (RP-Initiated Logout §2). It can name
    nothing older than its own session, and, like a fresh one, it ends nothing by itself."""
    url, ctx = provider
    credentials = _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    claims = jwt.decode(_signed_in(url, credentials, device)["id_token"], options={"verify_signature": False})
    long_ago = int(time.time()) - 7 * 24 * 3600
    expired = ctx.jwt.sign_jwt({**claims, "iat": long_ago, "auth_time": long_ago, "exp": long_ago + 300},
                               algorithm="RS256", typ="JWT")
    request_id = _kept(url, _logout(url, id_token_hint=expired, post_logout_redirect_uri=AFTER_LOGOUT, state="x"))
    assert device.request("GET", "/session/me").status_code == 200
    answer = sign_out_as_device(url, device, request_id)
    assert answer.status_code == 200 and answer.json() == {"redirect_to": AFTER_LOGOUT + "?state=x"}
    assert device.request("GET", "/session/me").status_code == 401


def test_an_unregistered_uri_is_never_followed_and_a_bad_hint_is_an_error_page(provider):
    url, ctx = provider
    credentials, other = _app(ctx), _app(ctx, "Other")
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)

    for elsewhere in ("https://evil.example/", AFTER_LOGOUT + "?extra=1", AFTER_LOGOUT.upper()):
        refused = _logout(url, id_token_hint=tokens["id_token"], post_logout_redirect_uri=elsewhere, state="s")
        assert error_page(refused) == "invalid_request", elsewhere
        assert elsewhere not in refused.text and tokens["id_token"] not in refused.text  # nothing sent is shown
    assert device.request("GET", "/session/me").status_code == 200  # nothing ended
    header = jwt.get_unverified_header(tokens["id_token"])
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                        algorithm="RS256", headers={"kid": header["kid"]})
    for bad in ({"id_token_hint": forged}, {"id_token_hint": "not.a.jwt"},
                {"id_token_hint": tokens["id_token"], "client_id": other.app.client_id},
                {"id_token_hint": tokens["access_token"]}, {"client_id": "no-such-app"}):
        refused = _logout(url, post_logout_redirect_uri=AFTER_LOGOUT, **bad)
        assert error_page(refused) == "invalid_request", bad
        assert all(value not in refused.text for value in bad.values())  # no hint, no client echoed
    assert device.request("GET", "/session/me").status_code == 200
    missing = _interaction(url, "y" * 32)
    assert missing.status_code == 400 and missing.json()["code"] == "oidc_logout_unknown"


@pytest.fixture
def faults(dynamodb_endpoint):
    with DynamoFaults(dynamodb_endpoint) as proxy:
        yield proxy


def test_an_ending_that_did_not_commit_leaves_the_session_and_the_request_to_a_retry(make_server, faults):
    make_server()  # on DynamoDB Local itself: it makes the tables and the key ring
    url, ctx = make_server(host_name="127.0.0.1", dynamodb_endpoint_url=faults.url, create_tables=False)
    credentials = _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)
    request_id = _kept(url, _logout(url, id_token_hint=tokens["id_token"], post_logout_redirect_uri=AFTER_LOGOUT))
    challenge = requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    faults.fail(Shape.INTERNAL_SERVER_ERROR, operations={"TransactWriteItems"})   # the session's ending
    try:
        failed = sign_out_as_device(url, device, request_id, challenge=challenge)
    finally:
        faults.clear()
    assert failed.status_code == 503, failed.text
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, tokens["access_token"]) == 200
    retried = sign_out_as_device(url, device, request_id)
    assert retried.status_code == 200 and retried.json() == {"redirect_to": AFTER_LOGOUT}
    assert device.request("GET", "/session/me").status_code == 401
