"""A TV's code approved at the web UI's `/device` (SPEC §14, RFC 8628), in Chromium against `citylogin serve`
(gunicorn, as production runs it), in English and Japanese at 390 and 1280 px: the screen's side is plain
HTTP (it asks for a code and polls the token endpoint as a public client), the person's side is the page.
A person signed in approves a typed code; one arriving by the QR code's link is approved by this
browser's single sign-on; one signed out signs in with the password and the approval goes on; Deny; a
wrong or used code; and the account at its device limit asks "in use on another device — continue?"
(Cancel approves nothing, Continue displaces the other device)."""
from __future__ import annotations

import base64
import os
import re
import sys
from dataclasses import dataclass

import pytest
import requests
from playwright.sync_api import expect

from common import i18n
from tests.browser.pages import DevicePage
from tests.browser.test_layout import _PROBLEMS
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.device_flow import GRANT_TYPE, screen_app
from citylogin.client.api import Client
from tests.support.live import PASSWORD, FakeClock, register_device
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.services import running_process

pytestmark = pytest.mark.slow

APP_NAME = "Kitchen TV player"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
LOCALES = {"en": "en-US", "ja": "ja-JP"}


@dataclass(frozen=True)
class Provider:
    url: str
    client_id: str               # the TV app: a public client allowed the device grant


@pytest.fixture(scope="module")
def provider(dynamodb_endpoint, tmp_path_factory) -> Provider:
    """`citylogin serve` with a limit of two devices and polls every second, and a TV app; on tables of its own
    (its key ring is sealed under its own key-encryption key)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("devflow") + "_",
                "log_level": "WARNING",
                "data_dir": tmp_path_factory.mktemp("citylogin"), "max_concurrent_devices": 2,
                "device_poll_interval": 1, **FAST_ARGON2, **RAISED_LIMITS}
    kek = base64.b64encode(os.urandom(32)).decode()
    env = {**config_env(settings), "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port),
           "CITYLOGIN_PUBLIC_URL": url, "CITYLOGIN_KEY_ENCRYPTION_KEY": kek}
    with running_process([sys.executable, "-m", "citylogin", "serve"], port=port, env=env, timeout=60):
        app = add_app(env, APP_NAME, options=("--device-flow", "--public"))
        assert app["device_flow"] is True and app["device_class"] == "tv", app
        yield Provider(url, app["client_id"])


@dataclass
class Screen:
    """One sign-in the TV started: its device code (kept by the TV) and the code it shows."""

    device_code: str
    user_code: str
    link: str                    # verification_uri_complete: what its QR code holds


def screen_asks(provider: Provider) -> Screen:
    """The TV's POST /oidc/device_authorization (RFC 8628 §3.1), as a public client."""
    answer = requests.post(provider.url + "/oidc/device_authorization", timeout=30,
                           data={"client_id": provider.client_id, "scope": "openid profile offline_access"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert re.fullmatch(r"[BCDFGHJKMNPQRSTVWXZ]{4}-[BCDFGHJKMNPQRSTVWXZ]{4}", body["user_code"]), body
    return Screen(body["device_code"], body["user_code"], body["verification_uri_complete"])


def screen_polls(provider: Provider, screen: Screen) -> requests.Response:
    """One poll of the token endpoint (RFC 8628 §3.4)."""
    return requests.post(provider.url + "/oidc/token", timeout=30, data={
        "client_id": provider.client_id, "grant_type": GRANT_TYPE, "device_code": screen.device_code})


def still_waiting(provider: Provider, screen: Screen) -> bool:
    """Whether the code still waits for the person (nothing approved nor denied), asked without a poll."""
    return requests.post(provider.url + "/oidc/device/lookup", json={"user_code": screen.user_code},
                         timeout=30).status_code == 200


def texts(locale: str):
    return lambda key, **params: i18n.text(key, locale, **params)


def device_in(new_device, provider: Provider, locale: str, viewport: dict) -> DevicePage:
    return new_device(provider.url, locale=LOCALES[locale], viewport=viewport)


def registered(device: DevicePage) -> str:
    """A new account whose first device is this browser, signed in in this tab."""
    username = unique_name()
    device.open()
    device.register(username, device_name="Phone browser")
    return username


def expect_approval(device: DevicePage, screen: Screen, say) -> None:
    """The approval form: the app, the code, what it asks for, the warning, the screen's name."""
    page = device.page
    form = page.locator("#device-approve-form")
    expect(form).to_be_visible()
    expect(page.locator("#device-app")).to_have_text(say("web.device_flow.request", app=APP_NAME))
    expect(page.locator("#device-shown-code")).to_have_text(screen.user_code)
    expect(form.locator("#device-scopes li")).to_have_text(
        [say(f"web.oidc.scope.{scope}") for scope in ("openid", "profile", "offline_access")])
    expect(page.locator("#device-warning")).to_have_text(say("web.device_flow.warning"))
    expect(page.locator("#device-name")).to_have_value(APP_NAME)


def expect_approved(device: DevicePage, say, name: str) -> None:
    expect(device.page.locator("#device-outcome-text")).to_have_text(say("web.device_flow.approved_tv", name=name))
    expect(device.page.locator("#device-outcome")).to_be_visible()


def expect_signed_in_screen(provider: Provider, screen: Screen, username: str) -> None:
    """The TV's next poll: the tokens of a session of its own, for the person who approved."""
    answer = screen_polls(provider, screen)
    assert answer.status_code == 200, answer.text
    userinfo = requests.get(provider.url + "/oidc/userinfo", timeout=30,
                            headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
    assert userinfo.status_code == 200 and userinfo.json()["preferred_username"] == username, userinfo.text


def layout_problems(device: DevicePage, username: str | None) -> list[str]:
    return device.page.evaluate(_PROBLEMS, username)


@pytest.mark.parametrize(("locale", "viewport"), [("en", LAPTOP), ("en", PHONE), ("ja", LAPTOP), ("ja", PHONE)],
                         ids=["en-1280", "en-390", "ja-1280", "ja-390"])
def test_a_signed_in_person_types_the_code_and_approves_with_the_keyboard(new_device, provider, screenshot,
                                                                           locale, viewport):
    device = device_in(new_device, provider, locale, viewport)
    page, say = device.page, texts(locale)
    username = registered(device)
    screen = screen_asks(provider)

    page.goto(provider.url + "/device")            # this tab's session, as after a reload
    code = page.locator("#device-code")
    expect(page.locator("#device-flow-title")).to_have_text(say("web.device_flow.title"))
    expect(code).to_be_focused()
    assert page.locator("#whoami-user").inner_text() == username
    page.keyboard.type(screen.user_code.replace("-", "").lower())      # any case, no dash: the server's business
    page.keyboard.press("Enter")
    expect_approval(device, screen, say)
    expect(page.locator("#device-name")).to_be_focused()
    assert layout_problems(device, username) == []
    screenshot(page, f"device-approve-{viewport['width']}-{locale}")
    page.keyboard.press("Control+A")
    page.keyboard.type("Living-room TV")
    page.keyboard.press("Enter")                   # Approve is the form's submit button
    expect_approved(device, say, "Living-room TV")
    assert layout_problems(device, username) == []
    expect_signed_in_screen(provider, screen, username)

    # Sessions lists the screen's own session: its name, its class and the app signed in on it
    page.get_by_role("link", name=say("web.device_flow.to_account")).click()
    device.expect_devices_screen()
    device.go("sessions")
    row = page.locator("#session-rows tr", has_text="Living-room TV")
    expect(row.locator(".badge.kind")).to_have_text(say("web.devices.class.tv"))
    expect(row.locator(".session-app-name")).to_have_text(APP_NAME)
    assert layout_problems(device, username) == []


def test_the_qr_codes_link_is_taken_out_of_the_address_bar_and_approved_by_single_sign_on(new_device, provider):
    """Another tab of the browser, with no session of its own: this browser's device key signs for it."""
    device = device_in(new_device, provider, "ja", PHONE)
    say = texts("ja")
    username = registered(device)
    screen = screen_asks(provider)
    other_tab = DevicePage(device.page.context.new_page(), provider.url)
    page = other_tab.page
    logins: list[str] = []
    page.on("request", lambda request: logins.append(request.url) if "/login/" in request.url
            and not request.url.endswith("/login/challenge") else None)
    page.goto(screen.link)
    expect_approval(other_tab, screen, say)
    assert page.url == provider.url + "/device"    # the code left the address bar (and the history)
    page.locator("#device-name").fill("寝室のテレビ")
    page.locator("#device-approve").click()
    expect_approved(other_tab, say, "寝室のテレビ")
    expect(page.locator("#auth-screen")).to_be_hidden()
    assert logins == [] and other_tab.errors == []
    expect_signed_in_screen(provider, screen, username)


def test_a_person_signed_out_signs_in_with_the_password_and_the_approval_goes_on(new_device, provider):
    device = device_in(new_device, provider, "en", PHONE)
    page, say = device.page, texts("en")
    username = registered(device)
    device.log_out()
    screen = screen_asks(provider)
    page.goto(screen.link)
    expect_approval(device, screen, say)
    page.locator("#device-name").fill("Den TV")
    page.locator("#device-approve").click()

    # No live session on this browser's device: the login screen, saying for what
    expect(device.login_form).to_be_visible()
    expect(page.locator("#device-for")).to_have_text(say("web.device_flow.sign_in", app=APP_NAME))
    expect(page.locator("#device-flow")).to_be_hidden()
    assert still_waiting(provider, screen)
    page.reload()                                  # the code and the name wait through a reload
    expect(device.login_form).to_be_visible()
    expect(page.locator("#device-for")).to_have_text(say("web.device_flow.sign_in", app=APP_NAME))
    expect(page.locator("#login-username")).to_have_value(username)
    assert layout_problems(device, None) == []
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect_approved(device, say, "Den TV")
    expect(page.locator("#whoami-user")).to_have_text(username)
    expect_signed_in_screen(provider, screen, username)


def test_deny_needs_no_sign_in_and_the_code_is_then_dead(new_device, provider):
    device = device_in(new_device, provider, "ja", LAPTOP)
    page, say = device.page, texts("ja")
    screen = screen_asks(provider)
    page.goto(screen.link)                         # a browser that has never signed in here
    expect_approval(device, screen, say)
    page.locator("#device-deny").click()
    expect(page.locator("#device-outcome-text")).to_have_text(say("web.device_flow.denied"))
    denied = screen_polls(provider, screen)
    assert (denied.status_code, denied.json()["error"]) == (400, "access_denied")

    # The same code again, typed: wrong, used or expired, never which
    page.goto(provider.url + "/device")
    page.locator("#device-code").fill(screen.user_code)
    page.locator("#device-code-form button[type=submit]").click()
    expect(page.locator("#device-code-form .error")).to_have_text(say("web.error.invalid_user_code"))
    expect(page.locator("#device-approve-form")).to_be_hidden()
    assert layout_problems(device, None) == []


def test_a_wrong_code_says_so_without_saying_why(new_device, provider):
    device = device_in(new_device, provider, "en", PHONE)
    page, say = device.page, texts("en")
    page.goto(provider.url + "/device?user_code=bcdf-ghjk")   # as a mistyped link: no such code
    expect(page.locator("#device-code-form .error")).to_have_text(say("web.error.invalid_user_code"))
    assert page.url == provider.url + "/device"
    expect(page.locator("#device-code")).to_have_value("bcdf-ghjk")
    page.locator("#device-code").fill("")
    page.locator("#device-code-form button[type=submit]").click()
    expect(page.locator("#device-code-error")).to_have_text(say("web.field.required"))
    assert layout_problems(device, None) == []


def test_at_the_limit_cancel_approves_nothing_and_continue_displaces_the_other_device(new_device, provider):
    """The account's limit is two: its first device (the Python client) and this browser hold both seats."""
    first = register_device(provider.url)
    first.login(PASSWORD)
    assert first.request("PATCH", "/account", json={"locale": "ja"}).status_code == 200   # the page follows it
    device = device_in(new_device, provider, "ja", PHONE)
    page, say = device.page, texts("ja")
    device.open()
    device.pair(first.request_pairing()["qr_code"], first.key_file.username, device_name="Phone browser")
    device.expect_devices_screen()
    screen = screen_asks(provider)
    page.goto(screen.link)
    expect_approval(device, screen, say)

    dialog = page.locator("#concurrent-dialog")
    page.locator("#device-approve").click()
    expect(dialog).to_be_visible()
    expect(page.locator("#concurrent-message")).to_have_text(say("web.concurrent.message"))
    expect(dialog.locator("#concurrent-devices li")).to_have_count(2)
    assert layout_problems(device, first.key_file.username) == []
    dialog.locator("button[value=cancel]").click()
    expect(page.locator("#device-approve-form .note")).to_have_text(say("web.device_flow.cancelled"))
    assert still_waiting(provider, screen)
    assert first.request("GET", "/session/me").status_code == 200

    page.locator("#device-approve").click()
    expect(dialog).to_be_visible()
    dialog.locator("button[value=continue]").click()
    expect_approved(device, say, APP_NAME)
    expect(page.locator("#device-evicted")).to_have_text(
        say("web.device_flow.evicted", names=first.key_file.device_name))
    assert first.request("GET", "/session/me").status_code == 401
    expect_signed_in_screen(provider, screen, first.key_file.username)


def test_a_policy_that_rejects_a_second_device_says_so_and_approves_nothing(make_server, new_device):
    """CITYLOGIN_CONCURRENCY_POLICY=reject: at the limit the screen is refused (409
    concurrent_login_rejected), with no question to answer."""
    url, ctx = make_server(host_name="127.0.0.1", concurrency_policy="reject", max_concurrent_devices=2)
    provider = Provider(url, screen_app(ctx, name=APP_NAME, public=True).app.client_id)
    first = register_device(url)
    first.login(PASSWORD)
    device = device_in(new_device, provider, "en", LAPTOP)
    page, say = device.page, texts("en")
    device.open()
    device.pair(first.request_pairing()["qr_code"], first.key_file.username, device_name="Phone browser")
    device.expect_devices_screen()
    screen = screen_asks(provider)
    page.goto(screen.link)
    expect_approval(device, screen, say)
    page.locator("#device-approve").click()
    expect(page.locator("#device-approve-form .error")).to_have_text(say("web.error.concurrent_login_rejected"))
    expect(page.locator("#concurrent-dialog")).to_be_hidden()
    assert still_waiting(provider, screen)
    assert first.request("GET", "/session/me").status_code == 200


def test_too_many_codes_from_one_address_get_the_rate_limit_message(make_server, new_device):
    """Codes are limited per address (RFC 8628 §5.1): past the minute's tries, even a right code waits. The
    server's clock stands still, so the minute cannot turn over during the test, and in a minute of its own:
    the tries of the module's other tests from this address (the same tables) are in other minutes."""
    url, ctx = make_server(host_name="127.0.0.1", user_codes_per_minute_per_ip=2)
    ctx.clock = clock = FakeClock()
    clock.advance(400 * 24 * 3600)
    provider = Provider(url, screen_app(ctx, name=APP_NAME, public=True).app.client_id)
    device = device_in(new_device, provider, "ja", PHONE)
    page, say = device.page, texts("ja")
    page.goto(url + "/device")
    form = page.locator("#device-code-form")
    for wrong in ("BCDF-GHJK", "bcdfghjm"):
        form.locator("#device-code").fill(wrong)
        form.locator("button[type=submit]").click()
        expect(form.locator(".error")).to_have_text(say("web.error.invalid_user_code"))
        form.locator(".error").evaluate("(node) => { node.hidden = true; node.textContent = ''; }")
    form.locator("#device-code").fill(screen_asks(provider).user_code)
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_have_text(say("web.error.rate_limited"))
    expect(page.locator("#device-approve-form")).to_be_hidden()


def test_with_a_limit_of_one_the_tv_takes_the_approving_phones_own_seat_and_the_page_stays(make_server, new_device,
                                                                                         screenshot):
    """The default limit, one device: the phone that approves holds the only seat, so the question names the
    TV being signed in and says the phone itself goes; continuing signs the phone out, and the page keeps the
    outcome and says why."""
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=1)
    provider = Provider(url, screen_app(ctx, name=APP_NAME, public=True).app.client_id)
    device = device_in(new_device, provider, "en", PHONE)
    page, say = device.page, texts("en")
    username = registered(device)
    screen = screen_asks(provider)
    page.goto(screen.link)
    expect_approval(device, screen, say)
    page.locator("#device-approve").click()
    dialog = page.locator("#concurrent-dialog")
    expect(dialog.locator("#concurrent-title")).to_have_text(
        say("web.concurrent.title_screen", device=say("web.concurrent.class.tv"), name=APP_NAME))
    expect(dialog.locator("#concurrent-message")).to_have_text(say("web.concurrent.message_self"))
    expect(dialog.locator("#concurrent-default")).to_have_text(say("web.concurrent.default_self"))
    expect(dialog.locator("#concurrent-devices li")).to_have_count(1)
    expect(dialog.locator("#concurrent-devices li strong")).to_have_text("Phone browser")
    expect(dialog.locator("#concurrent-devices li .badge.current")).to_have_text(say("web.devices.this_device"))
    expect(dialog.locator("input[name=displace]")).to_be_checked()
    expect(dialog.locator("input[name=displace]")).to_be_focused()
    assert layout_problems(device, username) == []
    screenshot(page, "in-use-tv-self-390-en")
    page.keyboard.press("Enter")                   # Continue
    expect_approved(device, say, APP_NAME)
    expect(page.locator("#device-evicted")).to_have_text(say("web.device_flow.evicted", names="Phone browser"))
    expect(page.locator("#notice-text")).to_have_text(say("web.banner.displaced"))   # the session stream's news
    expect(page.locator("#whoami")).to_be_hidden()
    expect(page.locator("#auth-screen")).to_be_hidden()
    expect(page.locator("#device-outcome")).to_be_visible()
    expect_signed_in_screen(provider, screen, username)


def test_the_approving_phone_goes_by_default_and_the_person_keeps_it_signing_the_other_device_out(
        new_device, provider, screenshot):
    """The limit is two and the phone signed in first, so it is the one that goes by default: the dialog says so
    and offers the other device; choosing that one (arrow key, Enter) signs it out and keeps the phone signed in.
    The approval is in another tab of the phone's browser, by its single sign-on: the web SDK's
    approveDeviceWithDevice() carries the choice."""
    device = device_in(new_device, provider, "ja", LAPTOP)
    say = texts("ja")
    username = registered(device)
    other = Client(provider.url)
    other.pair(device.show_pairing_code(), username=username, password=PASSWORD, device_name="Den laptop")
    other.login(PASSWORD)
    screen = screen_asks(provider)
    tab = DevicePage(device.page.context.new_page(), provider.url)
    page = tab.page
    approvals: list[dict] = []
    page.on("request", lambda request: approvals.append(request.post_data_json)
            if request.url.endswith("/oidc/device/approve/device") else None)
    page.goto(screen.link)
    expect_approval(tab, screen, say)
    page.locator("#device-name").fill("Living-room TV")
    page.locator("#device-approve").click()

    dialog = page.locator("#concurrent-dialog")
    expect(dialog.locator("#concurrent-title")).to_have_text(
        say("web.concurrent.title_screen", device=say("web.concurrent.class.tv"), name="Living-room TV"))
    expect(dialog.locator("#concurrent-default")).to_have_text(say("web.concurrent.default_self"))
    expect(dialog.locator("#concurrent-choose")).to_have_text(say("web.concurrent.choose_other"))
    rows = dialog.locator("#concurrent-devices li")
    expect(rows.locator("strong")).to_have_text(["Phone browser", "Den laptop"])
    expect(rows.nth(0).locator(".badge.current")).to_have_text(say("web.devices.this_device"))
    expect(rows.nth(1).locator(".badge.current")).to_have_count(0)
    expect(dialog.locator("input[name=displace]").nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(dialog.locator("input[name=displace]").nth(1)).to_be_checked()
    assert layout_problems(tab, None) == []
    screenshot(page, "in-use-tv-other-1280-ja")
    laptop_session = rows.nth(1).get_attribute("data-session-id")
    page.keyboard.press("Enter")

    expect_approved(tab, say, "Living-room TV")
    expect(page.locator("#device-evicted")).to_have_text(say("web.device_flow.evicted", names="Den laptop"))
    assert [body.get("displace") for body in approvals] == [None, [laptop_session]]
    assert other.request("GET", "/session/me").status_code == 401
    device.refresh_devices()                       # the phone's first tab: still signed in
    expect(device.banner).to_be_hidden()
    assert tab.errors == []
    expect_signed_in_screen(provider, screen, username)
