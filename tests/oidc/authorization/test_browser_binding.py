"""An authorization request is finished only by the browser that started it (SPEC §14): /oidc/authorize
gives that browser a cookie of its own for the request and keeps only its digest; the sign-in page's
calls (interaction, complete, single sign-on, cancel) refuse any other browser with 403
oidc_request_other_browser and give it nothing. Two HTTP clients with separate cookie jars stand for two
browsers: a request id that leaks from A to B, signed in as another account, is worth nothing to B, and A
still finishes it (the same with two Chromium contexts: tests/browser/test_oidc_sign_in.py)."""
from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.wrappers import Response

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.app import create_app
from citylogin.client.api import Client
from citylogin.client.keys import sign_challenge
from common.crypto.tokens import token_digest
from oidc.authorization import browser_binding
from oidc.authorization.request import REQUEST_PURPOSE
from oidc.core.store import GrantStore
from tests.conftest import app_settings
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import Browser, authorize_url, http_of, pkce_pair, query_of, waiting_request

REDIRECT = "https://app.example/callback"
SSO = "citylogin-sso:"
OTHER_BROWSER = (403, "oidc_request_other_browser")


@pytest.fixture
def provider(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    diary = apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))
    return url, ctx, diary


def _device(url: str) -> Client:
    """A browser with a device of a new account, signed in: its own cookie jar (Client.http)."""
    device = register_device(url)
    device.login(PASSWORD)
    return device


def _sso_body(url: str, device: Client, request_id: str, **extra) -> dict:
    challenge = requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    return {"request": request_id, "client_cert": device.key_file.client_cert_b64(), "challenge": challenge,
            "signature": sign_challenge(device.key_file.private_key(), challenge, purpose=SSO), **extra}


def _calls(url: str, device: Client, request_id: str) -> dict[str, tuple[str, dict, dict[str, str]]]:
    """Every call of the sign-in page that reads, continues or finishes a request, as `device`'s browser
    makes it: (path, body, headers)."""
    complete = url + "/oidc/authorize/complete"
    return {
        "interaction": ("/oidc/interaction", {"request": request_id}, {}),
        "complete": ("/oidc/authorize/complete", {"request": request_id, "consent": True},
                     device.auth_headers("POST", complete)),
        "device": ("/oidc/authorize/device", _sso_body(url, device, request_id, consent=True), {}),
        "cancel": ("/oidc/authorize/cancel", {"request": request_id, "error": "access_denied"}, {}),
    }


def _call(url: str, browser: Browser, path: str, body: dict, headers: dict[str, str], *,
          cookies: dict[str, str] | None = None) -> requests.Response:
    """A call from `browser` (its jar's cookies), or, with `cookies`, with exactly those and no jar."""
    if cookies is not None:
        return requests.post(url + path, json=body, headers=headers, cookies=cookies, timeout=10)
    return http_of(browser).post(url + path, json=body, headers=headers, timeout=10)


def _refused(answer: requests.Response) -> bool:
    return (answer.status_code, answer.json().get("code")) == OTHER_BROWSER and \
        answer.headers["Content-Type"].startswith("application/problem+json") and "redirect_to" not in answer.json()


def _cookie_of(browser: Browser, request_id: str) -> str:
    value = http_of(browser).cookies.get(browser_binding.cookie_name(request_id))
    assert value, "the browser holds no cookie for the request"
    return value


def _redeem(url: str, diary, code: str, verifier: str) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT, "code_verifier": verifier},
                         auth=(diary.app.client_id, diary.client_secret), timeout=10)


def test_a_leaked_request_id_gives_another_accounts_browser_nothing_and_its_own_browser_finishes(provider):
    url, ctx, diary = provider
    alice, bob = _device(url), _device(url)
    request_id, verifier = waiting_request(url, diary.app.client_id, redirect_uri=REDIRECT, browser=alice,
                                           scope="openid profile", state="st")
    # The id leaks to Bob's browser: every step of the sign-in page, his session's and his device key's
    # included, and consent given, is refused; the app hears of nothing, no code, no consent kept for Bob.
    for step, (path, body, headers) in _calls(url, bob, request_id).items():
        answer = _call(url, bob, path, body, headers)
        assert _refused(answer), (step, answer.status_code, answer.text)
    assert bob.get_json("/account/consents") == {"consents": []}
    assert GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).get(session_id=bob.session_id,
                                                                client_id=diary.app.client_id) is None

    # Alice's browser still has the request (Bob's "cancel" used nothing up) and finishes it as hers.
    shown = _call(url, alice, *_calls(url, alice, request_id)["interaction"])
    assert shown.status_code == 200 and shown.json()["client_name"] == "Diary"
    finished = _call(url, alice, *_calls(url, alice, request_id)["complete"])
    assert finished.status_code == 200, finished.text
    back = query_of(finished.json()["redirect_to"])
    assert set(back) == {"code", "state", "iss"} and back["state"] == "st"
    issued = _redeem(url, diary, back["code"], verifier)
    assert issued.status_code == 200, issued.text                   # not a replay: Bob's tries gave no code
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    userinfo = requests.get(url + "/oidc/userinfo", headers=bearer, timeout=10).json()
    assert userinfo["sub"] == alice.key_file.user_uuid


def test_a_leaked_request_of_bobs_browser_is_not_finished_by_alice_either(provider):
    """The other way round: Bob starts a request (his own app session) and sends Alice its link; her
    signed-in browser cannot finish it for him, so his app never gets her account."""
    url, _, diary = provider
    alice, bob = _device(url), _device(url)
    request_id, _ = waiting_request(url, diary.app.client_id, redirect_uri=REDIRECT, browser=bob, prompt="none")
    for step in ("complete", "device"):     # prompt=none answers without a page, never to another browser
        answer = _call(url, alice, *_calls(url, alice, request_id)[step])
        assert _refused(answer), (step, answer.text)
    own = _call(url, bob, *_calls(url, bob, request_id)["complete"])
    assert own.status_code == 200 and "code" in query_of(own.json()["redirect_to"]), own.text


@pytest.mark.parametrize("step", ["interaction", "complete", "device", "cancel"])
def test_a_missing_wrong_or_another_requests_cookie_is_refused(provider, step):
    url, _, diary = provider
    alice = _device(url)
    request_id, _ = waiting_request(url, diary.app.client_id, redirect_uri=REDIRECT, browser=alice)
    other_id, _ = waiting_request(url, diary.app.client_id, redirect_uri=REDIRECT, browser=alice)
    name, own = browser_binding.cookie_name(request_id), _cookie_of(alice, request_id)
    presented = {
        "missing": {},
        "wrong": {name: own[:-1] + ("A" if own[-1] != "A" else "B")},
        "empty": {name: ""},
        "over-long": {name: own * 5},
        "another request's": {name: _cookie_of(alice, other_id)},
        "under another request's name": {browser_binding.cookie_name(other_id): own},
        "the request id itself": {name: request_id},
    }
    for case, cookies in presented.items():
        path, body, headers = _calls(url, alice, request_id)[step]
        answer = _call(url, alice, path, body, headers, cookies=cookies)
        assert _refused(answer), (case, answer.status_code, answer.text)
    path, body, headers = _calls(url, alice, request_id)[step]
    answer = _call(url, alice, path, body, headers, cookies={name: own})
    assert answer.status_code == 200, answer.text                   # the right cookie alone does it
    unknown = _call(url, alice, *_calls(url, alice, "x" * 32)[step], cookies={name: own})
    assert (unknown.status_code, unknown.json()["code"]) == (400, "oidc_request_unknown")


def test_two_requests_of_one_browser_each_keep_their_own_cookie(provider):
    """Two tabs signing in at once (one browser, one jar): each request has a cookie of its own name,
    so the second does not take the first's place, and each finishes in either order."""
    url, _, diary = provider
    alice = _device(url)
    first, _ = waiting_request(url, diary.app.client_id, redirect_uri=REDIRECT, browser=alice, state="one")
    second, _ = waiting_request(url, diary.app.client_id, redirect_uri=REDIRECT, browser=alice, state="two")
    assert browser_binding.cookie_name(first) != browser_binding.cookie_name(second)
    assert _cookie_of(alice, first) != _cookie_of(alice, second)
    for request_id, state in ((second, "two"), (first, "one")):
        answer = _call(url, alice, *_calls(url, alice, request_id)["complete"])
        assert answer.status_code == 200 and query_of(answer.json()["redirect_to"])["state"] == state, answer.text


def test_the_cookie_is_http_only_lax_scoped_to_oidc_and_only_its_digest_is_kept(provider):
    url, ctx, diary = provider
    _, challenge = pkce_pair()
    answer = requests.get(authorize_url(url, response_type="code", client_id=diary.app.client_id,
                                        redirect_uri=REDIRECT, scope="openid", code_challenge=challenge,
                                        code_challenge_method="S256"), allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    request_id = answer.headers["Location"].split("#oidc=", 1)[1]
    set_cookies = answer.raw.headers.getlist("Set-Cookie")
    assert len(set_cookies) == 1, set_cookies
    morsel = _morsel(set_cookies[0], browser_binding.cookie_name(request_id))
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/oidc"
    assert not morsel["secure"]                                     # the issuer is http: a browser would drop it
    assert morsel["max-age"] == "600"                               # as long as the request waits
    assert request_id not in morsel.value and len(morsel.value) >= 43   # 256 random bits, not the id
    item = ctx.dynamodb.get_item(TableName=ctx.tables.one_time_tokens, ConsistentRead=True, Key={
        "token_digest": {"S": token_digest(request_id, purpose=REQUEST_PURPOSE)}})["Item"]
    assert morsel.value not in str(item)
    assert item["browser_digest"]["S"] == token_digest(morsel.value, purpose=browser_binding.VALUE_PURPOSE)


def test_an_https_issuer_makes_the_cookie_secure(dynamodb_endpoint, data_dir, table_prefix):
    app = create_app({**app_settings(dynamodb_endpoint, data_dir, table_prefix),
                      "public_url": "https://login.example"})
    diary = apps.add_app(app.extensions["citylogin"], name="Diary", push_url=None,
                         oidc=OidcClient(redirect_uris=(REDIRECT,)))
    _, challenge = pkce_pair()
    answer = app.test_client().get("/oidc/authorize", query_string={
        "response_type": "code", "client_id": diary.app.client_id, "redirect_uri": REDIRECT, "scope": "openid",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert answer.status_code == 303
    request_id = answer.headers["Location"].split("#oidc=", 1)[1]
    morsel = _morsel(answer.headers["Set-Cookie"], browser_binding.cookie_name(request_id))
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/oidc"


def test_an_issuer_under_a_path_scopes_the_cookie_to_its_oidc():
    response = Response()
    browser_binding.set_cookie(response, request_id="r" * 32, binding=browser_binding.new_binding(),
                               issuer="https://example.org/login/", max_age=600)
    morsel = _morsel(response.headers["Set-Cookie"], browser_binding.cookie_name("r" * 32))
    assert morsel["path"] == "/login/oidc" and morsel["secure"]


def _morsel(header: str, name: str):
    cookie = SimpleCookie()
    cookie.load(header)
    assert list(cookie) == [name], header
    return cookie[name]


VALUES = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


@given(value=VALUES, presented=st.one_of(st.none(), VALUES))
def test_only_the_very_value_passes_the_check(value, presented):
    """The check compares digests of the parsed cookie value: any other value (one character off, a
    prefix, padding, another case, another encoding of it), or none, is another browser."""
    kept = browser_binding.value_digest(value)
    if presented == value and len(value) <= browser_binding.MAX_VALUE:
        browser_binding.check(kept=kept, presented=presented)
        return
    with pytest.raises(browser_binding.OtherBrowser):
        browser_binding.check(kept=kept, presented=presented)


@given(value=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=43,
                     max_size=43), edit=st.sampled_from(["drop", "add", "swapcase", "pad", "space", "nul"]))
def test_near_misses_of_a_real_value_are_refused(value, edit):
    presented = {"drop": value[:-1], "add": value + "A", "swapcase": value.swapcase(), "pad": value + "=",
                 "space": f" {value}", "nul": value + "\x00"}[edit]
    if presented == value:                                          # swapcase of a value with no letters
        return
    with pytest.raises(browser_binding.OtherBrowser):
        browser_binding.check(kept=browser_binding.value_digest(value), presented=presented)


def test_a_request_kept_before_requests_were_bound_is_nobodys():
    """A request an older version kept (no digest) is refused to every browser: the person starts again."""
    with pytest.raises(browser_binding.OtherBrowser):
        browser_binding.check(kept=None, presented="anything")
