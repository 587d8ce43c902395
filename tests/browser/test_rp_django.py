"""The Django relying-party libraries at their own defaults (SPEC §14 Interoperability): mozilla-django-oidc
and social-auth-app-django, each unmodified and set up as its own quick start says
(tests/interop/django/mozilla_site/settings.py and urls.py, tests/interop/django/social_site/settings.py and
urls.py), in its own process; a person signs in through citylogin's web UI in Chromium and lands signed in at
the app.

mozilla-django-oidc keys its people by e-mail address, and citylogin tells an app an address only once it
is verified: a person who creates the account in the middle of the app's sign-in is asked to open the
link just mailed before going back, and then the app lets them in. Neither library sends citylogin a
logout (their logout is the app's own) nor listens for a Back-Channel Logout, and neither asks for a
refresh token at its defaults. What each does once asked is tested too: mozilla-django-oidc's logout at
citylogin and silent renewal (prompt=none), social-auth-app-django's refresh with `offline_access`."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.browser.pages import DevicePage
from tests.conftest import app_settings, unique_name
from tests.support.django_apps import django_python, running_django
from tests.support.fixtures import app_servers
from tests.support.mailbox import Mailbox
from tests.support.ports import free_port
from tests.support.waiting import wait_until
from common.runtime.context import AppContext


@dataclass(frozen=True)
class Provider:
    url: str
    ctx: AppContext
    mailbox: Mailbox


@pytest.fixture(scope="module")
def citylogin(dynamodb_endpoint, data_dir, table_prefix):
    django_python()        # skipped before anything starts when the Django apps are not installed
    config = app_settings(dynamodb_endpoint, data_dir, table_prefix)
    with app_servers(config) as start:
        url, ctx = start(host_name="127.0.0.1")       # its public URL, the issuer, is where it listens
        ctx.notifier.backend = mailbox = Mailbox()
        yield Provider(url, ctx, mailbox)


def client_of(provider: Provider, name: str, redirect_uri: str, **options):
    """The app as an operator adds it: a confidential client with that one redirect URI (and `options`)."""
    return apps.add_app(provider.ctx, name=name, push_url=None,
                        oidc=OidcClient(redirect_uris=(redirect_uri,), **options))


@pytest.fixture(scope="module")
def mozilla_app(citylogin, tmp_path_factory) -> str:
    port = free_port()
    credentials = client_of(citylogin, "mozilla-django-oidc", f"http://127.0.0.1:{port}/oidc/callback/")
    with running_django("mozilla_site", port=port, data=tmp_path_factory.mktemp("mozilla"), env={
            "OIDC_ISSUER": citylogin.url, "OIDC_RP_CLIENT_ID": credentials.app.client_id,
            "OIDC_RP_CLIENT_SECRET": credentials.client_secret}) as url:
        yield url


@pytest.fixture(scope="module")
def mozilla_opt_in_app(citylogin, tmp_path_factory) -> str:
    """mozilla_site with the library's opt-ins (opt_in_settings.py): silent renewal by SessionRefresh, and
    logging out at citylogin too (provider_logout.py), which needs its page registered to come back to."""
    port = free_port()
    credentials = client_of(citylogin, "mozilla-django-oidc opt-in", f"http://127.0.0.1:{port}/oidc/callback/",
                            post_logout_redirect_uris=(f"http://127.0.0.1:{port}/",))
    with running_django("mozilla_site", settings="opt_in_settings", port=port,
                        data=tmp_path_factory.mktemp("mozilla-opt-in"), env={
                            "OIDC_ISSUER": citylogin.url, "OIDC_RP_CLIENT_ID": credentials.app.client_id,
                            "OIDC_RP_CLIENT_SECRET": credentials.client_secret}) as url:
        yield url


@pytest.fixture(scope="module")
def social_app(citylogin, tmp_path_factory) -> str:
    port = free_port()
    credentials = client_of(citylogin, "social-auth-app-django", f"http://127.0.0.1:{port}/complete/oidc/")
    with running_django("social_site", port=port, data=tmp_path_factory.mktemp("social"), env={
            "OIDC_ISSUER": citylogin.url, "SOCIAL_AUTH_OIDC_KEY": credentials.app.client_id,
            "SOCIAL_AUTH_OIDC_SECRET": credentials.client_secret}) as url:
        yield url


@pytest.fixture(scope="module")
def social_offline_app(citylogin, tmp_path_factory) -> str:
    """social_site with `offline_access` added to its scope (offline_settings.py): the one setting that gets
    it a refresh token, which it renews with the library's own UserSocialAuth.refresh_token (offline_urls.py)."""
    port = free_port()
    credentials = client_of(citylogin, "social-auth-app-django offline", f"http://127.0.0.1:{port}/complete/oidc/")
    with running_django("social_site", settings="offline_settings", port=port,
                        data=tmp_path_factory.mktemp("social-offline"), env={
                            "OIDC_ISSUER": citylogin.url, "SOCIAL_AUTH_OIDC_KEY": credentials.app.client_id,
                            "SOCIAL_AUTH_OIDC_SECRET": credentials.client_secret}) as url:
        yield url


def sign_in_from(page, app_url: str) -> None:
    """The app's "Sign in with citylogin": the library sends the browser to citylogin's sign-in page."""
    page.goto(app_url + "/")
    page.wait_for_selector("body[data-state=signed-out]")
    page.locator("#sign-in").click()


def expect_signed_in_at(page, app_url: str) -> None:
    page.wait_for_url(re.compile(re.escape(app_url) + r"/$"))
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")


def expect_signed_out_at(page, app_url: str) -> None:
    page.wait_for_url(re.compile(re.escape(app_url) + r"/$"))
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out")


def registered_for_app(device: DevicePage, app_url: str, name: str) -> str:
    """A new account made on citylogin's sign-in page reached from the app; the username."""
    sign_in_from(device.page, app_url)
    expect(device.page.locator("#oidc-for")).to_have_text(f"Sign in to continue to {name}")
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    return username


def open_link_in_new_tab(device: DevicePage, link: str) -> DevicePage:
    """The person opens the mailed link: another tab of the same browser."""
    tab = DevicePage(device.page.context.new_page(), device.url)
    tab.page.goto(link)
    expect(tab.page.locator("#notice-text")).to_have_text("Your e-mail address is verified. Thank you.")
    return tab


def test_a_new_account_confirms_its_address_then_mozilla_django_oidc_lets_it_in(citylogin, mozilla_app, new_device):
    device = new_device(citylogin.url)
    page = device.page
    username = registered_for_app(device, mozilla_app, "mozilla-django-oidc")
    email = f"{username}@example.com"
    # The app asked for `email` and the address is not verified: asked first, the address named
    dialog = page.locator("#verify-first-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#verify-first-title")).to_have_text("Confirm your e-mail address first")
    expect(dialog.locator("#verify-first-message")).to_contain_text(f"Open the link we sent to {email}")
    dialog.locator("#verify-first-check").click()               # not opened yet: it says so and waits
    expect(dialog.locator("#verify-first-note")).to_have_text(
        "The address is not confirmed yet. Open the link in the e-mail, then try again.")
    expect(dialog).to_be_visible()

    # The link opened in another tab: the waiting tab goes on by itself, and the app lets the person in
    link_tab = open_link_in_new_tab(device, citylogin.mailbox.link(citylogin.url, "verify_email", email))
    expect_signed_in_at(page, mozilla_app)
    expect(page.locator("#email")).to_have_text(email)
    assert not link_tab.errors, link_tab.errors

    # The library's logout is the app's own: citylogin's session goes on, so signing in again is single
    # sign-on, with no page of citylogin's to act on
    page.locator("#log-out").click()
    expect_signed_out_at(page, mozilla_app)
    page.locator("#sign-in").click()
    expect_signed_in_at(page, mozilla_app)
    expect(page.locator("#email")).to_have_text(email)


def test_going_on_unconfirmed_mozilla_django_oidc_refuses_until_the_link_is_opened(citylogin, mozilla_app, new_device):
    device = new_device(citylogin.url)
    page = device.page
    username = registered_for_app(device, mozilla_app, "mozilla-django-oidc")
    email = f"{username}@example.com"
    dialog = page.locator("#verify-first-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Send the link again").click()
    expect(dialog.locator("#verify-first-note")).to_have_text("A new link is on its way.")
    assert citylogin.mailbox.count("verify_email", email) == 2
    # Without the address the app refuses the person (the library's own failure: back to its page)
    dialog.get_by_role("button", name="Continue without it").click()
    expect_signed_out_at(page, mozilla_app)

    # Confirmed later, the next sign-in at the app goes through on the device's citylogin session
    open_link_in_new_tab(device, citylogin.mailbox.link(citylogin.url, "verify_email", email))
    page.locator("#sign-in").click()
    expect_signed_in_at(page, mozilla_app)
    expect(page.locator("#email")).to_have_text(email)


def renewed_silently(page, app_url: str, renewals: list[str]) -> str | None:
    """The site's page loaded again, through a prompt=none round trip once the ID token is older than the
    site's OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS: the page's state then, None before a renewal was tried."""
    renewals.clear()
    page.goto(app_url + "/")
    page.wait_for_url(re.compile(re.escape(app_url) + r"/$"))
    state = page.locator("body").get_attribute("data-state")
    return state if renewals else None


def test_mozilla_django_oidc_opt_ins_renew_silently_and_log_out_at_citylogin(citylogin, mozilla_opt_in_app,
                                                                             new_device):
    device = new_device(citylogin.url)
    page = device.page
    username = registered_for_app(device, mozilla_opt_in_app, "mozilla-django-oidc opt-in")
    open_link_in_new_tab(device, citylogin.mailbox.link(citylogin.url, "verify_email", f"{username}@example.com"))
    expect_signed_in_at(page, mozilla_opt_in_app)
    renewals: list[str] = []
    page.on("request", lambda request: renewals.append(request.url)
            if "/oidc/authorize?" in request.url and "prompt=none" in request.url else None)

    # SessionRefresh: while the device's citylogin session lives, prompt=none comes back signed in
    assert wait_until(lambda: renewed_silently(page, mozilla_opt_in_app, renewals), timeout=30, interval=0.5,
                      what="a silent renewal") == "signed-in"

    # The library's logout sends the browser on to citylogin with the ID token: this browser's device proves
    # the session, which ends without a question, and the browser comes back to the site signed out
    page.locator("#log-out").click()
    expect_signed_out_at(page, mozilla_opt_in_app)
    page.goto(citylogin.url + "/")
    device.expect_login_screen()

    # Signed in again, then out of citylogin in its own tab: the site's next renewal hears login_required
    # and signs the person out of the site as well
    page.goto(mozilla_opt_in_app + "/")
    page.locator("#sign-in").click()
    device.log_in(username)
    expect_signed_in_at(page, mozilla_opt_in_app)
    page.goto(citylogin.url + "/")
    device.expect_devices_screen()
    device.log_out()
    assert wait_until(lambda: renewed_silently(page, mozilla_opt_in_app, renewals), timeout=30, interval=0.5,
                      what="the renewal after the citylogin session ended") == "signed-out"


def test_social_auth_app_django_signs_a_new_account_in_and_out(citylogin, social_app, new_device):
    device = new_device(citylogin.url)
    page = device.page
    username = registered_for_app(device, social_app, "social-auth-app-django")
    # It asks for `email` too (openid profile email), but keys its people by `sub`: the person may go on
    dialog = page.locator("#verify-first-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Continue without it").click()
    expect_signed_in_at(page, social_app)
    expect(page.locator("#who")).to_have_text(username)      # preferred_username, from userinfo

    page.locator("#log-out").click()                         # Django's own logout
    expect_signed_out_at(page, social_app)
    page.locator("#sign-in").click()                         # single sign-on on the device's session
    expect_signed_in_at(page, social_app)
    expect(page.locator("#who")).to_have_text(username)


def test_social_auth_app_django_refreshes_until_the_citylogin_session_ends(citylogin, social_offline_app, new_device):
    device = new_device(citylogin.url)
    page = device.page
    registered_for_app(device, social_offline_app, "social-auth-app-django offline")
    page.locator("#verify-first-dialog").get_by_role("button", name="Continue without it").click()
    expect_signed_in_at(page, social_offline_app)
    for _ in range(2):                                      # each refresh spends the one before: it keeps the new one
        page.locator("#refresh").click()
        expect(page.locator("#refresh-outcome")).to_have_text("rotated")
        page.goto(social_offline_app + "/")

    # The person logs out of citylogin on this device. The library hears no back channel, so the Django
    # session goes on; its next refresh is refused.
    page.goto(citylogin.url + "/")
    device.expect_devices_screen()
    device.log_out()
    page.goto(social_offline_app + "/")
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
    page.locator("#refresh").click()
    expect(page.locator("#refresh-outcome")).to_contain_text("refused")
