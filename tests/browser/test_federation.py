"""Accounts from elsewhere in Chromium (SPEC §16, issue 84): the upstream is node-oidc-provider in its own process
(tests/support/upstream.py) answering as Google does, registered as the operator's "google" provider; Chromium
follows its redirects as a person's browser would (the upstream signs in whoever `next_login` names, with no page).

- A new person signs up with Google: "Continue with Google" on the login form, the username chosen (the one the
  provider suggests changed), the e-mail shown as verified, the recovery codes, signed in; signed out, "Continue
  with Google" signs in again with this browser's device key; Account lists Google, and unlinking it is refused
  with last_way_in (no password, no passkey, no other identity) — in English and Japanese, at 390 and 1280 px,
  the login form with its buttons and the username step fitting the screen.
- A password account links Google from the Account page and, on a second device (paired with the password) at
  the limit of one, signs in with Google: the in-use dialog asks, Continue, and the first device's session ends
  ("Signed in on another device"); the second unlinks Google (it has a password) and the list is empty.
- Google says the e-mail of a password account: nothing is linked on its word. "E-mail me a link" mails that
  account a link, which links Google once opened; then Google signs in to it. For another account the person
  signs in to it on its device to link it, and is signed in, Google listed.
- Apple answers by form_post with a private-relay e-mail and checks the JWT client secret citylogin signs with the
  operator's key: the person signs up with it, the relay address shown.
- An app's OpenID sign-in page offers Google too: a new person signs up with it there and the browser goes back to
  the app with a code for the app's request."""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from common import i18n
from federation.providers import add_provider, remove_provider
from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.browser.pages import DevicePage
from tests.browser.test_layout import _PROBLEMS
from tests.conftest import unique_name
from tests.support.live import PASSWORD
from tests.support.mailbox import Mailbox
from tests.support.oidc import authorize_url, pkce_pair, query_of
from tests.support.upstream import AppleKey, client
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
LOCALES = {"en": "en-US", "ja": "ja-JP"}
REDIRECT = "https://app.example/callback"


def texts(locale: str):
    return lambda key, **params: i18n.text(key, locale, **params)


@pytest.fixture
def providers():
    """add(ctx, **fields): a provider for this test, removed after it (the module's tests share their tables)."""
    added = []

    def add(ctx, **fields):
        added.append((ctx, add_provider(ctx, **fields).name))

    yield add
    for ctx, name in added:
        remove_provider(ctx, name=name)


@pytest.fixture
def google(make_server, upstream_factory, providers):
    """google(**settings) -> (url, upstream, ctx): citylogin with the upstream as its provider "google"."""
    def start(**settings):
        url, ctx = make_server(host_name="127.0.0.1", **settings)     # its public URL: the redirect URI
        secret = secrets.token_hex(16)
        upstream = upstream_factory("google", clients=[
            client("citylogin", redirect_uri=f"{url}/federation/google/callback", secret=secret)])
        providers(ctx, name="google", preset="google", issuer=upstream.issuer, client_id="citylogin",
                  client_secret=secret)
        return url, upstream, ctx
    return start


def continue_with_google(device: DevicePage, say, *, form: str = "#login-form") -> None:
    device.page.locator(form).get_by_role("button", name=say("web.federation.continue_with", name="Google")).click()


def fits(device: DevicePage) -> None:
    assert device.page.evaluate(_PROBLEMS, None) == []


@pytest.mark.parametrize(("locale", "viewport"), [("en", LAPTOP), ("en", PHONE), ("ja", LAPTOP), ("ja", PHONE)],
                         ids=["en-1280", "en-390", "ja-1280", "ja-390"])
def test_a_person_signs_up_and_in_with_google_and_cannot_unlink_the_last_way_in(google, new_device, screenshot,
                                                                              locale, viewport):
    url, upstream, _ = google(max_concurrent_devices=1)
    say = texts(locale)
    device = new_device(url, locale=LOCALES[locale], viewport=viewport).open()
    expect(device.login_form.locator("button.provider svg")).to_have_count(1)          # the mark beside the name
    fits(device)
    sub, user = f"g-{unique_name()}", unique_name("fed")
    upstream.next_login(sub=sub, email=f"{user}@example.com", email_verified=True, name="Ada Lovelace")
    continue_with_google(device, say)

    form = device.page.locator("#federation-form")
    expect(form.locator("h1")).to_have_text(say("web.federation.choose_title"))
    expect(form.locator("#federation-email")).to_have_text(f"{user}@example.com")
    expect(form.locator(".badge")).to_have_text(say("web.account.verified"))
    expect(form.locator("#federation-username")).not_to_have_value("")                # the provider's suggestion
    fits(device)
    screenshot(device.page, f"federation-username-{viewport['width']}-{locale}")
    form.locator("#federation-username").fill(user)
    form.locator("button[type=submit]").click()
    device.save_recovery_codes()
    device.expect_devices_screen()
    expect(device.page.locator("#whoami-user")).to_have_text(user)

    device.log_out()
    upstream.next_login(sub=sub, email=f"{user}@example.com", email_verified=True)
    continue_with_google(device, say)
    device.expect_devices_screen()                       # linked: this browser's device key signed in
    expect(device.page.locator("#whoami-user")).to_have_text(user)

    identities = open_sign_in_methods(device)
    expect(identities.locator("#identity-list li")).to_have_count(1)
    expect(identities.locator("#identity-list li")).to_contain_text(f"{user}@example.com")
    fits(device)
    unlink(device, "Google")
    expect(identities.locator(".error")).to_have_text(say("web.error.last_way_in"))
    expect(identities.locator("#identity-list li")).to_have_count(1)


def test_a_linked_google_signs_in_a_second_device_over_the_limit_and_unlinks(google, new_device, screenshot):
    url, upstream, _ = google(max_concurrent_devices=1)
    say = texts("en")
    laptop = new_device(url).open()
    user = unique_name()
    laptop.register(user, device_name="Alice laptop")
    sub = f"g-{unique_name()}"
    upstream.next_login(sub=sub, email=f"{user}.google@example.com", email_verified=True)
    identities = open_sign_in_methods(laptop)
    identities.get_by_role("button", name=say("web.federation.link_with", name="Google")).click()
    expect(laptop.account_panel).to_be_visible()         # back at /#account, the Account panel open
    identities = open_sign_in_methods(laptop)
    expect(identities.locator("#identity-list li")).to_have_count(1)
    expect(identities.locator("#identity-list li")).to_contain_text(f"{user}.google@example.com")

    phone = new_device(url)                              # a device of the account, by its password
    phone.pair(laptop.show_pairing_code(), user, device_name="Bob phone")
    dialog = phone.page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    phone.page.keyboard.press("Escape")                  # not now: the phone holds its key, no session
    phone.go("login")
    upstream.next_login(sub=sub, email=f"{user}.google@example.com", email_verified=True)
    continue_with_google(phone, say)
    expect(dialog).to_be_visible()                       # the limit stands for a sign-in with Google
    expect(dialog.locator("#concurrent-devices")).to_contain_text("Alice laptop")
    dialog.get_by_role("button", name="Continue").click()
    phone.expect_devices_screen()
    expect(laptop.banner).to_contain_text("Signed in on another device")

    identities = open_sign_in_methods(phone)
    identities.scroll_into_view_if_needed()
    screenshot(phone.page, "federation-sign-in-methods")
    unlink(phone, "Google")
    expect(identities.locator(".note")).to_have_text(say("web.federation.unlinked", provider="Google"))
    expect(identities.locator("#identity-list li")).to_have_count(0)
    expect(identities.locator("#identities-none")).to_be_visible()


def test_an_email_another_account_holds_links_only_once_that_account_is_proven(google, new_device):
    url, upstream, ctx = google(max_concurrent_devices=1)
    ctx.notifier.backend = mailbox = Mailbox()
    say = texts("en")
    device = new_device(url).open()
    user = unique_name()
    device.register(user, device_name="Alice laptop")
    device.log_out()
    sub = f"g-{unique_name()}"
    upstream.next_login(sub=sub, email=f"{user}@example.com", email_verified=True)
    continue_with_google(device, say)

    form = device.page.locator("#federation-form")
    expect(form.locator("h1")).to_have_text(say("web.federation.taken_title"))
    expect(form).to_contain_text(say("web.federation.taken_intro", email=f"{user}@example.com", provider="Google"))
    form.get_by_role("button", name=say("web.federation.taken_mail")).click()
    expect(form.locator(".note")).to_have_text(say("web.federation.mail_sent", provider="Google"))
    expect(form.get_by_role("button", name=say("web.federation.taken_sign_in"))).to_be_hidden()
    device.page.goto(f"{url}/?mailed#federation-link={mailed_token(mailbox, f'{user}@example.com')}")
    expect(form.locator("h1")).to_have_text(say("web.federation.confirmed_title"))
    expect(form.locator(".note")).to_have_text(say("web.federation.confirmed", provider="Google"))
    form.get_by_role("button", name=say("web.common.back_to_login")).click()
    upstream.next_login(sub=sub, email=f"{user}@example.com", email_verified=True)
    continue_with_google(device, say)
    device.expect_devices_screen()                       # linked by the mailed link: Google signs in
    expect(device.page.locator("#whoami-user")).to_have_text(user)
    device.log_out()

    other = unique_name()                                # another account, proven by its password here
    device.register(other, device_name="Alice laptop")
    device.log_out()
    upstream.next_login(sub=f"g-{unique_name()}", email=f"{other}@example.com", email_verified=True)
    continue_with_google(device, say)
    form.get_by_role("button", name=say("web.federation.taken_sign_in")).click()
    form.locator("#federation-link-username").fill(other)
    form.locator("#federation-link-password").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    device.expect_devices_screen()
    expect(device.page.locator("#whoami-user")).to_have_text(other)
    identities = open_sign_in_methods(device)
    expect(identities.locator("#identity-list li")).to_contain_text("Google")


def mailed_token(mailbox: Mailbox, email: str) -> str:
    """The token of the last link mailed to `email` to link an identity (`/#federation-link=<token>`)."""
    def last() -> str | None:
        bodies = [m.body for m in list(mailbox.messages) if m.event == "federation_link" and m.email == email]
        found = bodies and re.search(r"/#federation-link=([A-Za-z0-9_-]+)", bodies[-1])
        return found[1] if found else None
    return wait_until(last, timeout=30, what=f"a federation_link message to {email}")


def open_sign_in_methods(device: DevicePage):
    """Account → the "Sign-in methods" card, drawn."""
    device.open_account()
    card = device.page.locator("#identities-form")
    expect(card).to_be_visible()
    expect(card.locator("#identity-list")).not_to_have_attribute("aria-busy", "true")
    return card


def unlink(device: DevicePage, provider: str) -> None:
    """"Unlink" on the provider's row, confirmed in the dialog."""
    row = device.page.locator("#identity-list li", has=device.page.locator(".device-name", has_text=provider))
    row.locator("button").click()
    dialog = device.page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#confirm-ok").click()


def test_an_apps_sign_in_page_offers_google_and_goes_back_to_the_app(google, new_device):
    url, upstream, ctx = google(max_concurrent_devices=1)
    say = texts("en")
    app = apps.add_app(ctx, name="Reading room", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,))).app
    device = new_device(url)
    device.page.route("https://app.example/**", lambda route: route.fulfill(status=200, body="back at the app"))
    _, challenge = pkce_pair()
    device.page.goto(authorize_url(url, client_id=app.client_id, response_type="code", redirect_uri=REDIRECT,
                                   scope="openid", state="app-state", code_challenge=challenge,
                                   code_challenge_method="S256"))
    expect(device.page.locator("#oidc-for")).to_contain_text("Reading room")
    user = unique_name("fed")
    upstream.next_login(sub=f"g-{user}", email=f"{user}@example.com", email_verified=True)
    continue_with_google(device, say)
    form = device.page.locator("#federation-form")
    expect(form.locator("h1")).to_have_text(say("web.federation.choose_title"))
    expect(device.page.locator("#oidc-for")).to_contain_text("Reading room")     # the app still waits
    form.locator("#federation-username").fill(user)
    form.locator("button[type=submit]").click()
    device.save_recovery_codes()
    device.page.wait_for_url(f"{REDIRECT}?*")
    answer = query_of(device.page.url)
    assert answer["state"] == "app-state" and answer["code"], answer


def test_apple_answers_by_form_post_and_a_person_signs_up_with_it(make_server, upstream_factory, providers,
                                                                  new_device):
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=1)
    key = AppleKey.generate()
    upstream = upstream_factory("apple", apple=key, clients=[
        client("com.example.citylogin", redirect_uri=f"{url}/federation/apple/callback")])
    providers(ctx, name="apple", preset="apple", issuer=upstream.issuer, client_id="com.example.citylogin",
              apple_private_key=key.private_pem, apple_team_id=key.team_id, apple_key_id=key.key_id)
    say = texts("en")
    device = new_device(url).open()
    posts: list[str] = []
    device.page.on("request", lambda request: posts.append(request.url)
                   if request.method == "POST" and "/federation/apple/callback" in request.url else None)
    user = unique_name("fed")
    upstream.next_login(sub=f"a-{user}", name="Ada Lovelace")
    device.login_form.get_by_role("button", name=say("web.federation.continue_with", name="Apple")).click()
    form = device.page.locator("#federation-form")
    expect(form.locator("h1")).to_have_text(say("web.federation.choose_title"))
    assert posts, "Apple's answer did not come by form_post"
    expect(form.locator("#federation-email")).to_contain_text("privaterelay.appleid.com")
    form.locator("#federation-username").fill(user)
    form.locator("button[type=submit]").click()
    device.save_recovery_codes()
    device.expect_devices_screen()
    expect(device.page.locator("#whoami-user")).to_have_text(user)
