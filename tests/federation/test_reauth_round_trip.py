"""Re-authentication with a real upstream provider (SPEC §16): node-oidc-provider in its own process
(tests/support/upstream.py). A password-less account goes to its provider with purpose "reauth": the provider is
asked for a fresh sign-in (max_age=0; prompt=login except Google's, which refuses it), its answer must be an
identity linked to that account, and the ticket it leaves becomes a reauth token that deletes the account."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from federation import identities, tickets
from federation.models import UpstreamIdentity
from tests.federation.test_round_trip import refusal, site_of  # noqa: F401  (site_of: the fixture)
from tests.support.federation_flows import Person

pytestmark = pytest.mark.slow  # a Node process and a served app per test


def person_at(site, sub: str) -> Person:
    """A password-less account made with `site`'s provider as the identity (upstream issuer, `sub`)."""
    return Person(site.url, site.ctx, site.name, who=UpstreamIdentity(
        provider=site.name, issuer=site.upstream.issuer, sub=sub, email=f"{sub}@example.com", email_verified=True))


def start_reauth(site, browser: requests.Session, person: Person) -> requests.Response:
    return browser.post(f"{site.url}/federation/{site.name}/start", headers=person.bearer, timeout=60,
                        json={"purpose": "reauth", "return_to": "/#account"})


@pytest.mark.parametrize(("preset", "prompt"), [("generic", ["login"]), ("google", None)])
def test_a_fresh_sign_in_at_the_provider_lets_a_password_less_account_delete_itself(site_of, preset, prompt):  # noqa: F811
    site = site_of("google" if preset == "google" else "company", preset=preset)
    person = person_at(site, "reauth-1")
    browser = requests.Session()
    started = start_reauth(site, browser, person)
    assert started.status_code == 200, started.text
    query = parse_qs(urlsplit(started.json()["authorization_url"]).query)
    assert query["max_age"] == ["0"] and query.get("prompt") == prompt
    site.upstream.next_login(sub="reauth-1", email="reauth-1@example.com", email_verified=True)
    answered = site.deliver(browser, site.upstream.authorize(browser, started.json()["authorization_url"]))
    assert answered.status_code == 303 and answered.headers["Location"] == "/#account", answered.text[:300]
    assert tickets.COOKIE in answered.cookies
    assert browser.get(f"{site.url}/federation/ticket", timeout=60).json()["purpose"] == "reauth"
    token = browser.post(f"{site.url}/federation/reauth", headers=person.bearer, timeout=60)
    assert token.status_code == 200, token.text
    gone = person.call("DELETE", "/account", {"reauth_token": token.json()["reauth_token"]})
    assert gone.status_code == 204, gone.text
    assert identities.owner_of(site.ctx, issuer=site.upstream.issuer, sub="reauth-1") is None


def test_signed_in_at_the_provider_as_someone_else_is_no_reauth(site_of):  # noqa: F811
    site = site_of("company", preset="generic")
    person = person_at(site, "reauth-2")
    browser = requests.Session()
    started = start_reauth(site, browser, person)
    site.upstream.next_login(sub="somebody-else", email="else@example.com", email_verified=True)
    answered = site.deliver(browser, site.upstream.authorize(browser, started.json()["authorization_url"]))
    assert refusal(answered) == (404, "identity_not_found")
    assert browser.post(f"{site.url}/federation/reauth", headers=person.bearer, timeout=60).status_code == 401
