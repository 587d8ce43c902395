"""Sign in with citylogin by OpenID Connect, in the browser (SPEC §14): two notes apps in their own
processes, each a confidential client through Authlib's Flask client, unmodified, send Chromium to
citylogin's own web UI; the person registers there (or pairs this browser by its QR payload, or declines),
signs in on this browser's device and comes back to the app with a code that the app's server redeems.
The second app signs in without a page (single sign-on on the same device's session); when another
device of the account takes the seat, both apps refuse the browser on their very next request."""
from __future__ import annotations

import base64
import os
import re
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from citylogin.client.api import Client
from common import i18n
from tests.browser.pages import DevicePage
from tests.conftest import config_env, unique_name
from tests.support.live import PASSWORD, register_device
from tests.support.notes import add_app, running_notes
from tests.support.oidc import authorize_url, pkce_pair
from tests.support.ports import free_port
from tests.support.services import running_process
from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Apps:
    citylogin: str
    notes: str                   # notes app "notes", plain
    diary: str                   # notes app "diary", asking for consent
    diary_client_id: str
    notes_client_id: str
    notes_secret: str            # the test redeems a code of the browser's session itself (RP logout)


@pytest.fixture(scope="module")
def apps(dynamodb_endpoint, tmp_path_factory) -> Apps:
    citylogin_port, notes_port, diary_port = free_port(), free_port(), free_port()
    citylogin_url = f"http://127.0.0.1:{citylogin_port}"
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("oidcweb") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                         "max_concurrent_devices": 1}),
           "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port), "CITYLOGIN_PUBLIC_URL": citylogin_url,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"],
                                            port=citylogin_port, env=env, timeout=60))
        notes = add_app(env, "notes", redirect_uris=(f"http://127.0.0.1:{notes_port}/signin/callback",
                                                     f"http://127.0.0.1:{notes_port}/probe"),
                        options=backchannel(notes_port))
        # Another host name for the second app: cookies do not tell ports apart, and each app keeps the
        # browser's sign-in in its own cookie (two apps on one host would need two cookie names).
        diary_url = f"http://localhost:{diary_port}"
        diary = add_app(env, "diary", redirect_uris=(f"{diary_url}/signin/callback",),
                        options=("--consent", *backchannel(diary_port)))
        stack.enter_context(running_notes(citylogin_url, "oidc", port=diary_port, credentials=diary))
        yield Apps(citylogin_url,
                   stack.enter_context(running_notes(citylogin_url, "oidc", port=notes_port, credentials=notes)),
                   diary_url, diary["client_id"], notes["client_id"], notes["client_secret"])


def backchannel(port: int) -> tuple[str, ...]:
    """Back-Channel Logout to the app's endpoint, and its page as where a logout comes back to."""
    return ("--backchannel-logout-uri", f"http://127.0.0.1:{port}/signin/backchannel-logout",
            "--post-logout-redirect-uri", f"http://127.0.0.1:{port}/")


@pytest.fixture
def browser_device(browser, apps):
    context = browser.new_context()
    device = DevicePage(context.new_page(), apps.citylogin)
    yield device
    context.close()
    assert not device.errors, device.errors


# The status of the app's API, asked from its page with the browser's cookie.
NOTES_STATUS = """async () => (await fetch("/api/notes")).status"""


def sign_in_from(device: DevicePage, app_url: str) -> None:
    """The app's "Sign in with citylogin": its server sends the browser to citylogin's sign-in page."""
    page = device.page
    page.goto(app_url + "/")
    page.wait_for_selector("body[data-state=signed-out]")
    page.locator("#sign-in").click()


def expect_signed_in_at(device: DevicePage, app_url: str, username: str) -> None:
    page = device.page
    page.wait_for_url(re.compile(re.escape(app_url) + r"/$"))
    page.wait_for_selector("body[data-state=signed-in]")
    expect(page.locator("#who")).to_have_text(username)


def registered_through(device: DevicePage, app_url: str) -> str:
    """A new account made on citylogin's sign-in page, reached from the app: back at the app, signed in."""
    sign_in_from(device, app_url)
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    expect_signed_in_at(device, app_url, username)
    return username


def add_note(device: DevicePage, text: str) -> None:
    device.page.locator("#note-text").fill(text)
    device.page.get_by_role("button", name="Add").click()
    device.page.wait_for_selector(f"#notes li:has-text('{text}')")


def test_register_at_citylogin_then_both_apps_sign_in_and_a_displacement_signs_both_out(browser_device, apps):
    device, page = browser_device, browser_device.page
    sign_in_from(device, apps.notes)
    # citylogin's own page says which app waits, and registering here is the way in
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to notes")
    assert urlsplit(page.url).fragment == ""             # the request id left the address bar
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    expect_signed_in_at(device, apps.notes, username)
    add_note(device, "buy milk")

    # The second app (it asks for consent): the same device's session, no login again
    logins: list[str] = []
    page.on("request", lambda request: logins.append(request.url) if "/login/" in request.url else None)
    sign_in_from(device, apps.diary)
    consent = page.locator("#consent-dialog")
    expect(consent).to_be_visible()
    expect(page.locator("#consent-title")).to_have_text("Allow diary to use your citylogin account?")
    expect(consent.locator("#consent-scopes li")).to_have_count(3)   # openid profile offline_access
    page.locator("#consent-allow").click()
    expect_signed_in_at(device, apps.diary, username)
    assert logins == []

    # Another device of the account logs in with force (the limit is one device): citylogin tells both
    # apps by Back-Channel Logout, and both refuse the browser from then on without asking citylogin.
    other = Client(apps.citylogin)
    page.goto(apps.citylogin + "/")
    device.expect_devices_screen()                        # the same tab resumes its citylogin session
    other.pair(device.show_pairing_code(), username=username, password=PASSWORD)
    other.login(PASSWORD, force=True)
    for app in (apps.diary, apps.notes):
        page.goto(app + "/")
        wait_until(lambda: page.evaluate(NOTES_STATUS) == 401 or None, timeout=10,
                   what=f"{app} refusing the browser (the logout token is on its way)")
        page.reload()
        page.wait_for_selector("body[data-state=signed-out]")
        expect(page.locator("#status")).to_have_text("Your citylogin session has ended. Sign in again.")


def test_a_browser_pairs_itself_by_qr_and_takes_the_seat_through_the_in_use_dialog(browser_device, apps):
    device, page = browser_device, browser_device.page
    first = register_device(apps.citylogin)              # the account's signed-in device shows a QR payload
    first.login(PASSWORD)
    payload = first.request_pairing()["qr_code"]
    sign_in_from(device, apps.notes)
    expect(page.locator("#oidc-banner")).to_be_visible()
    device.go("pair")
    device.pair_form.locator("#pair-code").fill(payload)
    device.send_pair_form(first.key_file.username, device_name="Phone browser")
    # The account is in use on its first device (a limit of one): "continue?" logs that one out
    dialog = page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("button[value=continue]").click()
    expect_signed_in_at(device, apps.notes, first.key_file.username)
    assert first.request("GET", "/session/me").status_code == 401


def test_declining_returns_to_the_app_without_a_sign_in(browser_device, apps):
    device, page = browser_device, browser_device.page
    sign_in_from(device, apps.notes)
    page.locator("#oidc-cancel").click()
    page.wait_for_url(re.compile(re.escape(apps.notes) + r"/$"))
    page.wait_for_selector("body[data-state=signed-out]")
    expect(page.locator("#status")).to_have_text("Not signed in (access_denied).")


# The web SDK's single sign-on from the page (what the sign-in page calls): the error code it is refused with.
SIGN_IN_FOR_APP = """async (request) => {
  const { citylogin } = await import("/web/api.js");
  try { return JSON.stringify(await citylogin.signInForApp(request)); } catch (error) { return error.code; }
}"""


def test_a_request_id_leaked_to_another_browser_is_finished_only_by_the_browser_that_started_it(new_device, apps):
    """Browser A (no account yet) starts signing in to notes; the request's id leaks to browser B, signed in
    to citylogin as another account. B's sign-in page is told the request is another browser's, B's device
    key cannot finish it either, and notes hears nothing from B; A then signs in and is back at notes as
    its own account (a login CSRF would have given A's notes session B's account)."""
    a, b = new_device(apps.citylogin), new_device(apps.citylogin)
    b.open()
    b.register(unique_name(), device_name="Other browser")
    to_notes: list[str] = []
    b.page.context.on("request", lambda request: to_notes.append(request.url)
                      if request.url.startswith(apps.notes) else None)

    with a.page.expect_response(lambda response: "/oidc/authorize?" in response.url) as started:
        sign_in_from(a, apps.notes)
    request_id = urlsplit(started.value.headers["location"]).fragment.removeprefix("oidc=")
    expect(a.page.locator("#oidc-for")).to_have_text("Sign in to continue to notes")

    leaked = b.page.context.new_page()
    leaked.goto(f"{apps.citylogin}/#oidc={request_id}")
    expect(leaked.locator("#notice-text")).to_have_text(i18n.text("web.error.oidc_request_other_browser", "en"))
    expect(leaked.locator("#oidc-banner")).to_be_hidden()
    assert leaked.evaluate(SIGN_IN_FOR_APP, request_id) == "oidc_request_other_browser"
    leaked.close()

    alice = unique_name()
    a.fill_register_form(alice, device_name="Laptop browser")
    a.save_recovery_codes()
    expect_signed_in_at(a, apps.notes, alice)
    assert to_notes == []                                   # notes never heard from B's browser


def test_consent_denied_tells_the_app_access_denied(browser_device, apps):
    device, page = browser_device, browser_device.page
    client = register_device(apps.citylogin)
    client.login(PASSWORD)
    payload = client.request_pairing()["qr_code"]
    client.logout()
    sign_in_from(device, apps.diary)
    # This browser is no device of that account yet: pair it, then deny the app at the consent page
    device.go("pair")
    device.pair_form.locator("#pair-code").fill(payload)
    device.send_pair_form(client.key_file.username, device_name="Tablet browser")
    expect(page.locator("#consent-dialog")).to_be_visible()
    page.locator("#consent-dialog button[value=deny]").click()
    page.wait_for_url(re.compile(re.escape(apps.diary) + r"/$"))
    expect(page.locator("#status")).to_have_text("Not signed in (access_denied).")


def test_consent_is_remembered_then_withdrawn_on_the_account_page(browser_device, apps):
    device, page = browser_device, browser_device.page
    completions: list[str] = []
    page.on("request", lambda request: completions.append(request.post_data or "")
            if request.url.endswith("/oidc/authorize/complete") else None)
    sign_in_from(device, apps.diary)
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    expect(page.locator("#consent-dialog")).to_be_visible()
    page.locator("#consent-allow").click()
    expect_signed_in_at(device, apps.diary, username)

    # The app's own sign-in cookie gone, it asks again: remembered, the browser goes straight back
    page.context.clear_cookies()
    completions.clear()
    sign_in_from(device, apps.diary)
    expect_signed_in_at(device, apps.diary, username)
    assert [('"consent":true' in body) for body in completions] == [False]

    # The Account page lists the app with what it may do; removing it takes its access back
    page.goto(apps.citylogin + "/")
    device.expect_devices_screen()
    panel = device.open_account()
    allowed = panel.locator("#consent-list > li")
    expect(allowed).to_have_count(1)
    expect(allowed.locator(".device-name")).to_have_text("diary")
    expect(allowed.locator(".scopes li")).to_have_count(3)
    allowed.get_by_role("button", name="Remove the access of diary").click()
    expect(panel.locator("#consents-form .note")).to_have_text("diary no longer has access to your account.")
    expect(allowed).to_have_count(0)
    expect(panel.locator("#consents-none")).to_be_visible()

    page.context.clear_cookies()
    sign_in_from(device, apps.diary)
    expect(page.locator("#consent-dialog")).to_be_visible()    # asked again
    page.locator("#consent-allow").click()
    expect_signed_in_at(device, apps.diary, username)


def test_a_session_in_another_tab_signs_the_apps_in_without_a_password(browser_device, apps, screenshot):
    device, page = browser_device, browser_device.page
    device.open()
    username = unique_name()
    device.register(username, device_name="Laptop browser")     # the citylogin tab: signed in, stays open

    app_tab = DevicePage(page.context.new_page(), apps.citylogin)
    logins: list[str] = []
    app_tab.page.on("request", lambda request: logins.append(request.url) if "/login/" in request.url and
                    not request.url.endswith("/login/challenge") else None)
    sign_in_from(app_tab, apps.notes)
    expect_signed_in_at(app_tab, apps.notes, username)            # no form: the device key signed for it
    sign_in_from(app_tab, apps.diary)                              # the app that asks: consent, then in
    expect(app_tab.page.locator("#consent-dialog")).to_be_visible()
    app_tab.page.locator("#consent-allow").click()
    expect_signed_in_at(app_tab, apps.diary, username)
    _, challenge = pkce_pair()                                     # prompt=none: straight back with a code
    app_tab.page.goto(authorize_url(apps.citylogin, response_type="code", client_id=apps.notes_client_id,
                                    redirect_uri=f"{apps.notes}/probe", scope="openid", state="s2", prompt="none",
                                    code_challenge=challenge, code_challenge_method="S256"))
    app_tab.page.wait_for_url(re.compile(re.escape(apps.notes) + r"/probe\?"))
    assert "code" in parse_qs(urlsplit(app_tab.page.url).query)
    assert logins == []
    assert not app_tab.errors, app_tab.errors

    # One session served the tab and both apps: the citylogin tab's, still live, and no other ever began
    page.reload()
    device.expect_devices_screen()
    device.go("sessions")
    page.locator("#sessions-show-ended").check()
    expect(page.locator("#session-rows tr")).to_have_count(1)
    expect(page.locator("#session-rows tr.current")).to_contain_text("Active")

    # A new citylogin tab resumes the device's session: no login form, and still the one session
    resumed = DevicePage(page.context.new_page(), apps.citylogin)
    resumed.page.goto(apps.citylogin + "/")
    resumed.expect_devices_screen()
    expect(resumed.page.locator("#whoami")).to_contain_text(username)
    # Its Sessions tab names the apps signed in on the session; diary signed out, notes and the session stay
    resumed.go("sessions")
    expect(resumed.page.locator("#session-rows tr")).to_have_count(1)
    names = resumed.page.locator("#session-rows tr.current .session-app-name")
    expect(names).to_have_text(["diary", "notes"])
    screenshot(resumed.page, "sessions-apps")
    resumed.page.get_by_role("button", name="Sign out diary from this session").click()
    expect(resumed.page.locator("#confirm-message")).to_contain_text("diary is signed out of this session")
    resumed.page.locator("#confirm-ok").click()
    expect(names).to_have_text(["notes"])
    app_tab.page.goto(apps.diary + "/")
    wait_until(lambda: app_tab.page.evaluate(NOTES_STATUS) == 401 or None, timeout=10,
               what="diary told by back channel")
    app_tab.page.goto(apps.notes + "/")
    assert app_tab.page.evaluate(NOTES_STATUS) == 200

    # The app asks for a fresh sign-in (prompt=login): logging in again would end the session and sign notes
    # out, so the person is asked first, in their language; cancelling leaves it all as it was
    _, challenge = pkce_pair()
    app_tab.page.goto(authorize_url(apps.citylogin, response_type="code", client_id=apps.notes_client_id,
                                    redirect_uri=f"{apps.notes}/probe", scope="openid", state="s3", prompt="login",
                                    code_challenge=challenge, code_challenge_method="S256"))
    app_tab.expect_login_screen()
    app_tab.switch_language("ja")
    app_tab.log_in(username)
    relogin = app_tab.page.locator("#relogin-dialog")
    expect(relogin).to_be_visible()
    expect(relogin.locator("#relogin-title")).to_have_text("このデバイスでもう一度ログインしますか？")
    expect(relogin.locator("#relogin-message")).to_contain_text("次のアプリもログアウトします")
    expect(relogin.locator("#relogin-apps li")).to_have_text(["notes"])
    screenshot(app_tab.page, "relogin-dialog-ja")
    relogin.locator("button[value=cancel]").click()
    expect(app_tab.page.locator("#login-form .note")).to_have_text(
        "再ログインしませんでした。このデバイスのセッションとアプリはそのままです。")
    app_tab.switch_language("en")
    app_tab.page.goto(apps.notes + "/")
    assert app_tab.page.evaluate(NOTES_STATUS) == 200
    resumed.page.reload()
    resumed.expect_devices_screen()                                # the same session, still live
    assert not resumed.errors, resumed.errors

    # Logged out in the citylogin tab, the next app sign-in asks for the password
    device.log_out()
    app_tab.page.context.clear_cookies()
    sign_in_from(app_tab, apps.notes)
    app_tab.expect_login_screen()
    expect(app_tab.page.locator("#oidc-for")).to_have_text("Sign in to continue to notes")


def test_prompt_none_without_a_session_goes_straight_back_with_login_required(browser_device, apps):
    page = browser_device.page
    _, challenge = pkce_pair()
    page.goto(authorize_url(apps.citylogin, response_type="code", client_id=apps.notes_client_id,
                            redirect_uri=f"{apps.notes}/probe", scope="openid", state="s1", prompt="none",
                            code_challenge=challenge, code_challenge_method="S256"))
    page.wait_for_url(re.compile(re.escape(apps.notes) + r"/probe\?"))
    answer = {name: values[0] for name, values in parse_qs(urlsplit(page.url).query).items()}
    assert answer == {"error": "login_required", "state": "s1", "iss": apps.citylogin}


def sign_outs(page) -> list[bool]:
    """Whether each device proof the sign-out page sends carries the person's yes (`confirm`), as they go."""
    sent: list[bool] = []
    page.on("request", lambda request: sent.append('"confirm":true' in (request.post_data or ""))
            if request.url.endswith("/oidc/logout/device") else None)
    return sent


def test_logging_out_of_the_app_signs_out_of_citylogin_without_a_question_and_comes_back(browser_device, apps):
    device, page = browser_device, browser_device.page
    registered_through(device, apps.notes)
    proofs = sign_outs(page)
    page.get_by_role("button", name="Log out").click()      # the device proves the session the ID token names
    page.wait_for_url(re.compile(re.escape(apps.notes) + r"/$"))
    expect(page.locator("#status")).to_have_text("Signed out of notes and citylogin.")
    assert proofs == [False]                                 # never asked
    page.goto(apps.citylogin + "/")
    device.expect_login_screen()                           # this tab's citylogin session is over too


def test_an_unproven_logout_request_asks_first_and_names_the_app(browser_device, apps):
    device, page = browser_device, browser_device.page
    registered_through(device, apps.notes)
    unproven = f"{apps.citylogin}/oidc/logout?client_id={apps.notes_client_id}"   # no hint: nothing named
    page.goto(unproven)
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-title")).to_have_text("Sign out of citylogin?")
    expect(page.locator("#confirm-message")).to_contain_text("notes asks to sign this device out of citylogin.")
    dialog.locator("button[value=cancel]").click()            # no: the session goes on
    device.expect_devices_screen()

    page.goto(unproven)
    expect(dialog).to_be_visible()
    page.locator("#confirm-ok").click()
    expect(device.banner).to_contain_text("You signed out of notes.")
    expect(device.banner).not_to_contain_text("another device")
    device.expect_login_screen()
    page.goto(apps.notes + "/")
    wait_until(lambda: page.evaluate(NOTES_STATUS) == 401 or None, timeout=10, what="notes hearing of the logout")


def test_a_proven_logout_with_no_way_back_says_which_app_in_japanese(browser, apps):
    context = browser.new_context(locale="ja-JP")
    device = DevicePage(context.new_page(), apps.citylogin)
    page = device.page
    try:
        registered_through(device, apps.notes)
        # The app's ID token of this browser's session: a code by single sign-on, redeemed here as the app would
        verifier, challenge = pkce_pair()
        page.goto(authorize_url(apps.citylogin, response_type="code", client_id=apps.notes_client_id,
                                redirect_uri=f"{apps.notes}/probe", scope="openid", state="s3",
                                code_challenge=challenge, code_challenge_method="S256"))
        page.wait_for_url(re.compile(re.escape(apps.notes) + r"/probe\?"))
        code = parse_qs(urlsplit(page.url).query)["code"][0]
        tokens = requests.post(apps.citylogin + "/oidc/token", auth=(apps.notes_client_id, apps.notes_secret),
                               data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                     "redirect_uri": f"{apps.notes}/probe"}, timeout=10).json()
        proofs = sign_outs(page)
        page.goto(f"{apps.citylogin}/oidc/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
        expect(device.banner).to_contain_text("notes からログアウトしました。")
        expect(device.banner).to_contain_text("この端末の citylogin のセッションも終了しました。")
        device.expect_login_screen()
        assert proofs == [False]                             # proven: never asked
        assert not device.errors, device.errors
    finally:
        context.close()
