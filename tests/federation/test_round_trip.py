"""The round trip with a real upstream provider (SPEC §16): node-oidc-provider in its own process
(tests/support/upstream.py) as Google, as Apple and as a company's provider. The person's browser is one
requests.Session: start → the provider (which signs the person in as next_login said) → its answer delivered
to citylogin's callback → the ticket cookie → GET /federation/ticket. Every refusal is a page naming its code,
counted once, and leaves no ticket."""
from __future__ import annotations

import logging
import re

import pytest
import requests
from prometheus_client import REGISTRY

from federation import discovery, providers, tickets, transactions
from federation.discovery import DIRECTORY, ProviderDirectory
from tests.conftest import unique_name
from tests.support.live import bearer_login, register_device
from tests.support.upstream import AppleKey, Answer, Upstream, client

pytestmark = pytest.mark.slow  # a Node process and a served app per test

DEADLINE = 2.0  # the fetch deadline these tests run with: the upstream's "slow" answers after 30 s
CODE = re.compile(r'data-error="([a-z_]+)"')
TAMPER_KINDS = ("wrong_aud", "wrong_iss", "expired", "bad_signature", "alg_none", "wrong_nonce",
                "hs256_with_public_key", "no_azp_multi_aud")


class Clock:
    """The monotonic clock of the app's directory of providers: it moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Site:
    """citylogin on a socket, one provider `name` pointing at `upstream`."""

    def __init__(self, url: str, ctx, name: str, upstream: Upstream) -> None:
        self.url, self.ctx, self.name, self.upstream = url, ctx, name, upstream

    def start(self, browser: requests.Session, **body) -> requests.Response:
        return browser.post(f"{self.url}/federation/{self.name}/start", json={"purpose": "sign_in", **body},
                            timeout=60)

    def to_provider(self, browser: requests.Session) -> Answer:
        started = self.start(browser)
        assert started.status_code == 200, started.text
        return self.upstream.authorize(browser, started.json()["authorization_url"])

    def deliver(self, browser: requests.Session, answer: Answer) -> requests.Response:
        if answer.method == "POST":
            return browser.post(answer.url, data=answer.params, allow_redirects=False, timeout=60)
        return browser.get(answer.url, params=answer.params, allow_redirects=False, timeout=60)

    def ticket(self, browser: requests.Session) -> requests.Response:
        return browser.get(f"{self.url}/federation/ticket", timeout=60)

    def directory(self, clock: Clock) -> None:
        """A fresh directory of providers' documents and keys on `clock` (nothing fetched yet)."""
        settings = self.ctx.settings
        self.ctx.slots.take(DIRECTORY)
        self.ctx.slots.put(DIRECTORY.given(ProviderDirectory(
            cache_seconds=settings.oidc_jwks_cache_seconds, refetch_seconds=settings.oidc_jwks_refetch_seconds,
            timeout=DEADLINE, private_allowed=True, clock=clock)))


@pytest.fixture
def site_of(make_server, upstream_factory):
    def make(mode: str = "google", *, preset: str = "google", apple: AppleKey | None = None) -> Site:
        url, ctx = make_server(host_name="127.0.0.1", oidc_fetch_private_addresses=True,
                               oidc_jwks_fetch_timeout=DEADLINE)
        name = unique_name("idp")[:20]
        callback = f"{url}/federation/{name}/callback"
        secret = "s3cret-" + name
        registered = client("svc." + name if apple else name, redirect_uri=callback, secret=secret,
                            **({"auth_method": "client_secret_post"} if apple else {}))
        upstream = upstream_factory(mode, clients=[registered], apple=apple)
        if apple:
            providers.add_provider(ctx, name=name, preset="apple", issuer=upstream.issuer,
                                   client_id=registered["client_id"], apple_private_key=apple.private_pem,
                                   apple_team_id=apple.team_id, apple_key_id=apple.key_id)
        else:
            providers.add_provider(ctx, name=name, preset=preset, issuer=upstream.issuer, client_id=name,
                                   client_secret=secret)
        return Site(url, ctx, name, upstream)
    return make


def refusal(response: requests.Response) -> tuple[int, str]:
    """(status, code) of a refusal page; no ticket was given with it."""
    assert response.headers["Content-Type"].startswith("text/html"), response.text[:300]
    assert tickets.COOKIE not in response.cookies
    found = CODE.search(response.text)
    assert found, response.text[:300]
    return response.status_code, found.group(1)


def test_a_google_sign_in_leaves_a_ticket_that_says_who_came_back(site_of):
    site = site_of("google")
    site.upstream.next_login(sub="g-1", email="ada@example.com", email_verified=True, name="Ada Lovelace",
                             hd="example.com")
    browser = requests.Session()
    answered = site.deliver(browser, site.to_provider(browser))
    assert answered.status_code == 303 and answered.headers["Location"] == "/#federation"
    assert tickets.COOKIE in answered.cookies
    view = site.ticket(browser).json()
    assert view | {"provider": site.name, "status": "new", "purpose": "sign_in", "email": "ada@example.com",
                   "email_verified": True, "name": "Ada Lovelace", "username": None, "signup": True,
                   "suggested_username": "ada"} == view
    assert requests.get(f"{site.url}/federation/ticket", timeout=60).status_code == 401  # another browser


def test_the_providers_offered_are_listed_without_secrets(site_of):
    site = site_of("google")
    listed = requests.get(f"{site.url}/federation/providers", timeout=60).json()["providers"]
    assert {"name": site.name, "display_name": "Google", "preset": "google", "signup": True} in listed
    assert "s3cret" not in str(listed)


def test_a_replayed_answer_is_refused_as_a_used_state(site_of):
    site = site_of("google")
    site.upstream.next_login(sub="g-2", email="bo@example.com", email_verified=True)
    browser = requests.Session()
    answer = site.to_provider(browser)
    assert site.deliver(browser, answer).status_code == 303
    assert refusal(site.deliver(browser, answer)) == (400, "federation_state_invalid")


def test_an_answer_delivered_to_another_browser_is_refused(site_of):
    site = site_of("google")
    site.upstream.next_login(sub="g-3", email="cy@example.com", email_verified=True)
    answer = site.to_provider(requests.Session())
    assert refusal(site.deliver(requests.Session(), answer)) == (403, "federation_other_browser")


@pytest.mark.parametrize("kind", TAMPER_KINDS)
def test_a_tampered_id_token_is_refused(site_of, kind):
    site = site_of("company", preset="generic")
    site.upstream.next_login(sub="c-1", email="dee@acme.example", email_verified=True)
    site.upstream.tamper(kind)
    browser = requests.Session()
    assert refusal(site.deliver(browser, site.to_provider(browser))) == (401, "federation_token_invalid")
    assert site.ticket(browser).status_code == 401


def refusals_counted(provider: str, reason: str) -> float:
    return REGISTRY.get_sample_value("citylogin_federation_refusals_total",
                                     {"provider": provider, "reason": reason}) or 0.0


def test_a_cancelled_sign_in_says_so_in_one_log_line_and_one_count(site_of, caplog):
    site = site_of("google")
    site.upstream.cancel_next()
    browser = requests.Session()
    answer = site.to_provider(browser)
    before = refusals_counted(site.name, "denied")
    with caplog.at_level(logging.INFO, logger="citylogin.federation.refusals"):
        assert refusal(site.deliver(browser, answer)) == (403, "federation_denied")
    assert refusals_counted(site.name, "denied") == before + 1
    lines = [r.getMessage() for r in caplog.records if r.name == "citylogin.federation.refusals"]
    assert lines == [f"Sign-in with a provider refused: provider={site.name} code=federation_denied reason=denied"]
    assert answer.params["state"] not in lines[0]


def test_the_refusal_page_is_in_the_language_the_web_ui_showed(site_of):
    site = site_of("google")
    site.upstream.cancel_next()
    browser = requests.Session()
    started = site.start(browser, locale="ja")
    page = site.deliver(browser, site.upstream.authorize(browser, started.json()["authorization_url"]))
    assert page.headers["Content-Language"] == "ja" and "取り消されました" in page.text


def test_a_rotated_key_is_picked_up_without_a_restart(site_of):
    site = site_of("company", preset="generic")
    clock = Clock()
    site.directory(clock)
    browser = requests.Session()
    site.upstream.next_login(sub="c-2", email="eve@acme.example", email_verified=True)
    assert site.deliver(browser, site.to_provider(browser)).status_code == 303
    rotated = site.upstream.rotate_keys(drop_old=True)
    clock.now += site.ctx.settings.oidc_jwks_refetch_seconds + 1  # the keys were fetched longer ago than that
    site.upstream.next_login(sub="c-2", email="eve@acme.example", email_verified=True)
    assert site.deliver(browser, site.to_provider(browser)).status_code == 303
    directory = site.ctx.slots.needed(DIRECTORY)
    keys = directory.key_set(site.name, directory.metadata(site.upstream.issuer), kid=None)
    assert [key.kid for key in keys.keys] == rotated["kids"]


@pytest.mark.parametrize("mode", ["slow", "garbage", "error"])
def test_a_provider_whose_discovery_fails_is_unavailable_at_start(site_of, mode):
    site = site_of("google")
    site.upstream.fault("discovery", mode)
    answer = site.start(requests.Session())
    assert answer.status_code == 503 and answer.json()["code"] == "idp_unavailable"
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert requests.post(f"{site.url}/login/challenge", json={}, timeout=60).status_code == 201  # passwords work


@pytest.mark.parametrize("endpoint", ["jwks", "token"])
def test_a_provider_whose_keys_or_token_endpoint_fail_gives_a_page_that_says_so(site_of, endpoint):
    site = site_of("google")
    for mode in ("slow", "garbage", "error"):
        site.directory(Clock())  # nothing fetched: the keys are fetched at this callback
        site.upstream.fault(endpoint, None)
        site.upstream.next_login(sub="g-9", email="fay@example.com", email_verified=True)
        browser = requests.Session()
        answer = site.to_provider(browser)
        site.upstream.fault(endpoint, mode)
        assert refusal(site.deliver(browser, answer)) == (503, "idp_unavailable"), mode


def test_apple_answers_by_form_post_takes_the_jwt_secret_and_gives_the_name_once(site_of):
    site = site_of("apple", apple=AppleKey.generate())
    browser = requests.Session()
    site.upstream.next_login(sub="a-1", email_verified=True, given_name="Grace", family_name="Hopper")
    first = site.to_provider(browser)
    assert first.method == "POST" and "user" in first.params
    assert site.deliver(browser, first).status_code == 303, site.upstream.log()
    view = site.ticket(browser).json()
    assert view["name"] == "Grace Hopper" and view["email"].endswith("privaterelay.appleid.com")
    site.upstream.next_login(sub="a-1", email_verified=True, given_name="Grace", family_name="Hopper")
    again = site.to_provider(browser)
    assert "user" not in again.params
    assert site.deliver(browser, again).status_code == 303
    assert site.ticket(browser).json()["name"] is None


def test_a_form_post_without_its_cookie_is_posted_again_from_citylogins_page(site_of):
    site = site_of("apple", apple=AppleKey.generate())
    browser = requests.Session()
    site.upstream.next_login(sub="a-2", email_verified=True)
    answer = site.to_provider(browser)
    # as a browser sends a cross-site POST: without the SameSite=Lax cookie
    bare = requests.post(answer.url, data=answer.params, allow_redirects=False, timeout=60)
    assert bare.status_code == 200 and 'id="oidc-response"' in bare.text
    again = {**answer.params, transactions.REPOSTED: "1"}
    assert site.deliver(browser, Answer("POST", answer.url, again)).status_code == 303


def test_the_directory_reads_only_a_document_of_the_configured_issuer():
    with pytest.raises(discovery.DiscoveryFailed):
        discovery.parse_metadata(b'{"issuer": "https://evil.example", "authorization_endpoint": "https://a/",'
                                 b' "token_endpoint": "https://a/t", "jwks_uri": "https://a/j"}',
                                 issuer="https://idp.example", private_allowed=False)


def test_link_another_then_sign_in_finds_the_account(site_of):
    site = site_of("google")
    person = register_device(site.url)
    token = bearer_login(person)["access_token"]
    browser = requests.Session()
    assert site.start(browser, purpose="link").status_code == 401  # linking needs the person's session
    site.upstream.next_login(sub="g-link", email="hal@example.com", email_verified=True)
    started = browser.post(f"{site.url}/federation/{site.name}/start", json={"purpose": "link"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=60)
    linked = site.deliver(browser, site.upstream.authorize(browser, started.json()["authorization_url"]))
    assert linked.status_code == 303 and linked.headers["Location"] == "/#account"
    assert tickets.COOKIE not in linked.cookies
    site.upstream.next_login(sub="g-link", email="hal@example.com", email_verified=True)
    assert site.deliver(browser, site.to_provider(browser)).status_code == 303
    view = site.ticket(browser).json()
    assert (view["status"], view["username"]) == ("linked", person.require_key_file().username)
    # the same identity linked again: refused with its page
    site.upstream.next_login(sub="g-link", email="hal@example.com", email_verified=True)
    again = browser.post(f"{site.url}/federation/{site.name}/start", json={"purpose": "link"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)
    answer = site.upstream.authorize(browser, again.json()["authorization_url"])
    assert refusal(site.deliver(browser, answer)) == (409, "identity_linked_elsewhere")


def test_return_to_must_be_a_path_of_this_service(site_of):
    site = site_of("google")
    for outside in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        answer = site.start(requests.Session(), return_to=outside)
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_field"), outside
    started = site.start(requests.Session(), return_to="/#account")
    cookie = started.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/federation" in cookie


def test_an_email_another_account_holds_is_said_without_naming_it(site_of):
    site = site_of("google")
    holder = register_device(site.url)
    site.upstream.next_login(sub="g-mail", email=f"{holder.require_key_file().username}@example.com",
                             email_verified=True)
    browser = requests.Session()
    assert site.deliver(browser, site.to_provider(browser)).status_code == 303
    view = site.ticket(browser).json()
    assert (view["status"], view["username"]) == ("email_taken", None)
