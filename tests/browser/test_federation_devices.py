"""An account made with Google has no password, yet gets a second browser and gets back in after losing every device
(SPEC §16, issue 84), in Chromium with the upstream node-oidc-provider in its own process answering as Google does:

- A person signs up with Google on a laptop, which then shows a pairing code ("Add a device"). On a phone the person
  continues with Google: the identity is linked but the phone holds no device of the account, so it is led to pair;
  the camera reads the laptop's code, the phone becomes a device of the account and is signed in (the limit is two:
  both stay signed in), and the laptop's pairing panel says the code was used.
- On a third browser, every device lost, the person continues with Google and uses a recovery code instead: a wrong
  code is refused in words, a right one (the lost devices removed) makes the browser a device and signs it in, and
  the laptop hears that it was removed.
- The laptop's pairing link opened on a phone (as its camera app does): the pair form asks for a password the account
  does not have, and offers "Continue with Google" instead; the phone goes through Google with the code kept in the
  tab (in no URL but the link's own) and, back, is paired with it and signed in, with no second scan; the used
  link opened again is refused on the pair step, the code filled in, where another can be scanned.
- An account an import brought (SPEC §17) with Google linked and no device: continuing with Google offers "Set up
  this device" beside pairing and the recovery code, and Google's answer alone makes this browser its first device
  and signs it in (en and ja); on another browser the same step is refused, the account having a device now.
- A TV's code typed at `/device` on a browser signed out: approving leads to the login screen, "Continue with
  Google" comes back to `/device`, and the approval goes on; the TV's next poll has its tokens."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from common.database.guarded_write import write_all
from federation import identities
from federation.models import UpstreamIdentity
from tests.browser.test_federation import LOCALES, continue_with_google, google, providers, texts  # noqa: F401

from tests.browser.pages import DevicePage
from tests.browser.test_pairing_link import FAKE_CAMERA
from tests.conftest import unique_name
from tests.support.device_flow import ask, poll, screen_app
from tests.support.imported_accounts import IMPORTED_AT, put_imported_account

pytestmark = pytest.mark.slow

PAIRED_WITHIN_MS = 30_000   # the laptop's pairing panel looks at the device list every few seconds


def test_an_account_made_with_google_adds_a_browser_and_recovers_without_a_password(google, new_device,  # noqa: F811
                                                                                   screenshot):
    url, upstream, _ = google(max_concurrent_devices=2)
    say = texts("en")
    user = unique_name("fed")
    who = {"sub": f"g-{unique_name()}", "email": f"{user}@example.com", "email_verified": True}
    laptop = new_device(url).open()
    upstream.next_login(**who)
    continue_with_google(laptop, say)
    laptop.page.locator("#federation-username").fill(user)
    laptop.page.locator("#federation-form button[type=submit]").click()
    codes = laptop.save_recovery_codes()
    laptop.expect_devices_screen()
    link = laptop.show_pairing_link()                    # "Add a device" on the account made with Google

    phone = new_device(url)
    phone.page.context.add_init_script(FAKE_CAMERA)
    phone.open()
    upstream.next_login(**who)
    continue_with_google(phone, say)
    form = phone.page.locator("#federation-form")
    expect(form.locator(".error")).to_have_text(say("web.error.no_device_key", username=user))
    form.get_by_role("button", name=say("web.federation.pair_choice")).click()
    expect(form.locator("h1")).to_have_text(say("web.federation.pair_title", username=user))
    phone.page.evaluate("(text) => { window.scannedText = text; }", link)
    form.get_by_role("button", name=say("web.pair.scan")).click()
    expect(form.locator("#federation-pair-code")).to_have_value(link)
    expect(form.locator("video")).to_be_hidden()        # the camera is off again
    expect(form.locator(".note").first).to_have_text(say("web.federation.pair_scanned"))
    form.locator("#federation-new-device").fill("Bob phone")
    screenshot(phone.page, "federation-pair")
    form.locator("button[type=submit]").click()
    phone.expect_devices_screen()
    expect(phone.page.locator("#whoami-user")).to_have_text(user)
    expect(laptop.page.locator("#pairing-state-text")).to_have_text(
        say("web.add_device.paired", name="Bob phone"), timeout=PAIRED_WITHIN_MS)
    laptop.go("devices")
    laptop.expect_devices_screen()                       # under the limit of two: both signed in

    found = new_device(url).open()
    upstream.next_login(**who)
    continue_with_google(found, say)
    form = found.page.locator("#federation-form")
    form.get_by_role("button", name=say("web.federation.recover_choice")).click()
    expect(form.locator("h1")).to_have_text(say("web.recover.title"))
    form.locator("#federation-recover-code").fill("aaaa-bbbb-cccc")
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_have_text(say("web.error.invalid_recovery_code"))
    form.locator("#federation-recover-code").fill(codes[0])
    form.locator("#federation-recover-unbind").check()
    screenshot(found.page, "federation-recover")
    form.locator("button[type=submit]").click()
    found.expect_devices_screen()
    expect(found.page.locator("#whoami-user")).to_have_text(user)
    expect(laptop.banner).to_contain_text(say("web.banner.device_removed_here"))


def signed_up_with_google(device: DevicePage, upstream, say, who: dict, user: str) -> None:
    """A new account made with Google on `device`, signed in there."""
    upstream.next_login(**who)
    continue_with_google(device, say)
    device.page.locator("#federation-username").fill(user)
    device.page.locator("#federation-form button[type=submit]").click()
    device.save_recovery_codes()
    device.expect_devices_screen()


def google_user() -> tuple[str, dict]:
    user = unique_name("fed")
    return user, {"sub": f"g-{unique_name()}", "email": f"{user}@example.com", "email_verified": True}


def test_a_pairing_link_opened_on_a_phone_pairs_it_through_google_with_no_second_scan(google, new_device,  # noqa: F811
                                                                                       screenshot):
    url, upstream, _ = google(max_concurrent_devices=3)
    say = texts("en")
    user, who = google_user()
    laptop = new_device(url).open()
    signed_up_with_google(laptop, upstream, say, who, user)
    link = laptop.show_pairing_link()
    payload = link.split("#pair=", 1)[1]

    phone = new_device(url)
    addresses: list[str] = []
    phone.page.on("request", lambda request: addresses.append(request.url))
    phone.page.on("framenavigated", lambda frame: addresses.append(frame.url))
    form = phone.open_pairing_link(link)
    expect(form.locator(".federation-or")).to_have_text(say("web.federation.pair_or"))
    screenshot(phone.page, "federation-pair-link")
    upstream.next_login(**who)
    continue_with_google(phone, say, form="#pair-form")
    phone.expect_devices_screen()                        # paired with the kept code, then signed in
    expect(phone.page.locator("#whoami-user")).to_have_text(user)
    expect(laptop.page.locator("#pairing-output")).to_have_class(re.compile(r"\bused\b"), timeout=PAIRED_WITHIN_MS)
    assert phone.page.evaluate("Object.keys(sessionStorage).filter((key) => key.includes('pairing'))") == []
    opened = [address for address in addresses if payload in address]
    assert opened and all(address == link for address in opened), opened    # the link's own address only

    tablet = new_device(url)                             # the same link again: used, said on the pair step
    tablet.open_pairing_link(link)
    upstream.next_login(**who)
    continue_with_google(tablet, say, form="#pair-form")
    form = tablet.page.locator("#federation-form")
    expect(form.locator(".error")).to_have_text(say("web.error.pairing_token_used"))
    expect(form.locator("h1")).to_have_text(say("web.federation.pair_title", username=user))
    expect(form.locator("#federation-pair-code")).to_have_value(link.split("#pair=", 1)[1])


def test_a_tv_code_typed_at_device_is_approved_after_continuing_with_google(google, new_device):  # noqa: F811
    url, upstream, ctx = google(max_concurrent_devices=2)
    say = texts("en")
    user, who = google_user()
    phone = new_device(url).open()
    signed_up_with_google(phone, upstream, say, who, user)
    phone.log_out()
    tv = screen_app(ctx)
    asked = ask(url, tv)
    assert asked.status_code == 200, asked.text
    screen = asked.json()

    page = phone.page
    page.goto(url + "/device")
    page.locator("#device-code").fill(screen["user_code"])
    page.keyboard.press("Enter")
    expect(page.locator("#device-approve-form")).to_be_visible()
    page.locator("#device-name").fill("Den TV")
    page.locator("#device-approve").click()
    expect(phone.login_form).to_be_visible()             # signed out here: the login screen, for the code
    upstream.next_login(**who)
    continue_with_google(phone, say)
    expect(page.locator("#device-outcome")).to_be_visible()
    assert page.url == url + "/device"                   # back where the code was typed, the landing taken out
    expect(page.locator("#device-outcome-text")).to_contain_text("Den TV")
    expect(page.locator("#whoami-user")).to_have_text(user)
    tokens = poll(url, tv, screen["device_code"])
    assert tokens.status_code == 200, tokens.text


@pytest.mark.parametrize("language", ["en", "ja"])
def test_an_imported_account_linked_to_google_sets_up_its_first_browser_with_google_alone(google, new_device,  # noqa: F811
                                                                                         language):
    url, upstream, ctx = google()
    say = texts(language)
    user, who = google_user()
    account = put_imported_account(ctx, username=user, email=who["email"], locale=language)
    identity = UpstreamIdentity(provider="google", issuer=upstream.issuer, sub=who["sub"], email=who["email"],
                                email_verified=True)
    write_all(ctx.dynamodb, identities.link_writes(ctx, user=account, identity=identity, linked_at=IMPORTED_AT))

    for name, refused in (("Imported phone", None), ("Second phone", say("web.error.device_exists"))):
        device = new_device(url, locale=LOCALES[language]).open()
        device.switch_language(language)
        upstream.next_login(**who)
        continue_with_google(device, say)
        form = device.page.locator("#federation-form")
        expect(form.locator(".error")).to_have_text(say("web.error.no_device_key", username=user))
        expect(form.get_by_role("button", name=say("web.federation.pair_choice"))).to_be_visible()
        form.get_by_role("button", name=say("web.enrol.title")).click()
        expect(form.locator("h1")).to_have_text(say("web.enrol.title"))
        expect(form.locator("p.muted")).to_have_text(say("web.federation.enrol_intro", username=user,
                                                         provider="Google"))
        form.locator("#federation-new-device").fill(name)
        form.locator("button[type=submit]").click()
        if refused:
            expect(form.locator(".error")).to_have_text(refused)
            expect(device.page.locator("#home-screen")).to_be_hidden()
            continue
        device.expect_devices_screen()
        expect(device.page.locator("#whoami-user")).to_have_text(user)
        expect(device.device(name)).to_contain_text(say("web.devices.this_device"))
