"""The in-use dialog lets the person choose which device goes (issue 83), in Chromium, in English and Japanese at
390 and 1280 px, with the keyboard: an account allowed two devices has a laptop and a tablet signed in (each a
browser context of its own), and a phone's sign-in meets the dialog. It names the action ("Sign in on this
device?"), says that the laptop (signed in first) goes by default and lists both, the laptop chosen; Escape
leaves everything; the arrow key chooses the tablet instead and Enter continues: the tablet, and only the
tablet, is told "Signed in on another device", and the laptop stays signed in.

The concepts page's picture is the English desktop dialog. To remake it (Chromium at /usr/bin/chromium):

    DOCS_IMAGES=1 .venv/bin/python -m pytest tests/browser/test_in_use_choice.py -q -k en-1280

which copies tests/screenshots/in-use-choice-1280-en.png into docs/images/in-use-choice.png."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from common import i18n
from operators import service as operators
from operators.models import LimitRequest
from tests.browser.conftest import SCREENSHOTS
from tests.browser.pages import DevicePage
from tests.browser.test_layout import _PROBLEMS
from tests.conftest import unique_name
from tests.support.live import PASSWORD, add_device, register_device

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
LOCALES = {"en": "en-US", "ja": "ja-JP"}
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
TOLD_WITHIN_S = 30        # a generous deadline for the displaced tab's banner; the time it took is printed
# The dialog itself fits the screen: nothing in it wider than it, and it inside the viewport.
DIALOG_FITS = """(dialog) => {
  const box = dialog.getBoundingClientRect();
  return dialog.scrollWidth <= dialog.clientWidth + 0.5 && box.left >= -0.5 && box.right <= innerWidth + 0.5;
}"""


def texts(locale: str):
    return lambda key, **params: i18n.text(key, locale, **params)


@pytest.mark.parametrize(("locale", "viewport"), [("en", LAPTOP), ("en", PHONE), ("ja", LAPTOP), ("ja", PHONE)],
                         ids=["en-1280", "en-390", "ja-1280", "ja-390"])
def test_the_person_chooses_the_other_device_and_only_that_one_is_signed_out(make_server, new_device, screenshot,
                                                                             locale, viewport):
    url, _ = make_server(max_concurrent_devices=2)
    say = texts(locale)
    laptop = new_device(url).open()
    user = unique_name()
    laptop.register(user, device_name="Alice laptop")
    tablet = new_device(url)
    used = laptop.show_pairing_code()
    tablet.pair(used, user, device_name="Bob tablet")
    tablet.expect_devices_screen()                    # two allowed: no question yet
    phone = new_device(url, locale=LOCALES[locale], viewport=viewport)
    confirms: list[dict] = []
    phone.page.on("request", lambda request: confirms.append(json.loads(request.post_data or "{}"))
                  if request.url.endswith("/login/confirm") else None)
    phone.pair(another_pairing_code(laptop, used), user, device_name="Carol phone")

    dialog = phone.page.locator("#concurrent-dialog")
    expect_the_question(phone, say)
    laptop.go("devices")                              # once paired: leaving "Add a device" drops its code
    laptop.expect_devices_screen()
    phone.page.keyboard.press("Escape")               # Cancel: nothing changes
    expect(dialog).to_be_hidden()
    expect(phone.login_form.locator(".note")).to_have_text(say("web.concurrent.cancelled"))
    assert confirms == []

    phone.log_in(user)                                # the same question again
    expect_the_question(phone, say)
    choices = dialog.locator("input[name=displace]")
    phone.page.keyboard.press("ArrowDown")            # from the laptop (the default) to the tablet
    expect(choices.nth(1)).to_be_focused()
    expect(choices.nth(1)).to_be_checked()
    expect(choices.nth(0)).not_to_be_checked()
    assert phone.page.evaluate(_PROBLEMS, None) == []
    assert dialog.evaluate(DIALOG_FITS)
    screenshot(phone.page, f"in-use-choice-{viewport['width']}-{locale}")
    tablet_session = dialog.locator("#concurrent-devices li").nth(1).get_attribute("data-session-id")
    phone.page.keyboard.press("Enter")                # Continue
    started = time.monotonic()

    expect(tablet.banner).to_contain_text("Signed in on another device", timeout=TOLD_WITHIN_S * 1000)
    print(f"the tablet was told after {time.monotonic() - started:.2f} s")
    tablet.expect_login_screen()
    phone.expect_devices_screen()
    assert [body.get("displace") for body in confirms] == [[tablet_session]]
    laptop.refresh_devices()                          # its next call is answered: still signed in
    expect(laptop.banner).to_be_hidden()
    expect(laptop.device("Alice laptop")).to_contain_text("Signed in")
    expect(laptop.device("Carol phone")).to_contain_text("Signed in")
    expect(laptop.device("Bob tablet")).not_to_contain_text("Signed in")
    if locale == "en" and viewport is LAPTOP and os.environ.get("DOCS_IMAGES"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCREENSHOTS / "in-use-choice-1280-en.png", DOCS_IMAGES / "in-use-choice.png")


def another_pairing_code(device: DevicePage, used: str) -> str:
    """"Show a new code" on the Add a device panel that showed `used`: the new code, once it replaced that one."""
    device.page.locator("#pairing-create").click()
    link = device.page.locator("#pairing-payload")
    expect(link).not_to_have_value(re.compile(re.escape(used) + "$"))
    expect(link).to_have_value(re.compile(r"/#pair=[A-Za-z0-9_-]+$"))
    return link.input_value().split("#pair=", 1)[1]


def expect_the_question(phone: DevicePage, say) -> None:
    """"Sign in on this device?": the laptop goes by default and is chosen, the tablet may be chosen instead,
    neither is this device, and the keyboard starts on the chosen one."""
    dialog = phone.page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#concurrent-title")).to_have_text(say("web.concurrent.title"))
    expect(dialog.locator("#concurrent-default")).to_have_text(
        say("web.concurrent.default", names=say("web.concurrent.quoted", name="Alice laptop")))
    expect(dialog.locator("#concurrent-choose")).to_have_text(say("web.concurrent.choose_other"))
    rows = dialog.locator("#concurrent-devices li")
    expect(rows.locator("strong")).to_have_text(["Alice laptop", "Bob tablet"])
    expect(rows.locator(".badge.current")).to_have_count(0)
    choices = dialog.locator("input[type=radio][name=displace]")
    expect(choices).to_have_count(2)
    expect(choices.nth(0)).to_be_checked()
    expect(choices.nth(0)).to_be_focused()


def test_when_two_must_go_the_person_ticks_two_and_exactly_those_are_signed_out(make_server, new_device, screenshot):
    """Three devices signed in where an operator then allows two: a fourth's sign-in needs two to go. The dialog
    has a checkbox each, the two signed in first ticked; one alone is not enough (it says so and stays); the
    person keeps the second and ticks the third instead, with the keyboard, and exactly those two are signed
    out."""
    url, ctx = make_server(max_concurrent_devices=3)
    first = register_device(url)
    first.login(PASSWORD)
    second, third = (add_device(ctx, first, name=name, device_class="desktop") for name in ("Den PC", "Attic PC"))
    second.login(PASSWORD)
    third.login(PASSWORD)
    user_uuid = first.key_file.user_uuid
    operators.set_limit(ctx, operator=operators.Operator(role=Role.ADMIN, cli=True, name="ops-desk"),
                        user_uuid=user_uuid, request=LimitRequest(reason="two at a time", limit=2))
    phone = new_device(url, viewport=PHONE)
    phone.open()
    phone.pair(first.request_pairing()["qr_code"], first.key_file.username, device_name="Carol phone")

    say = texts("en")
    dialog = phone.page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#concurrent-choose")).to_have_text(say("web.concurrent.choose_many", needed=2))
    rows = dialog.locator("#concurrent-devices li")
    names = [first.key_file.device_name, "Den PC", "Attic PC"]
    expect(rows.locator("strong")).to_have_text(names)
    boxes = dialog.locator("input[type=checkbox][name=displace]")
    expect(boxes.nth(0)).to_be_checked()
    expect(boxes.nth(1)).to_be_checked()
    expect(boxes.nth(2)).not_to_be_checked()
    expect(boxes.nth(0)).to_be_focused()
    keys = phone.page.keyboard
    keys.press("ArrowDown")
    expect(boxes.nth(1)).to_be_focused()
    keys.press("Space")                               # the second stays signed in
    keys.press("Enter")                               # one is not enough: said, and the dialog stays
    expect(dialog.locator("#concurrent-error")).to_have_text(say("web.concurrent.too_few", needed=2))
    expect(dialog).to_be_visible()
    keys.press("ArrowDown")
    keys.press("Space")                               # the third goes instead
    expect(boxes.nth(2)).to_be_checked()
    assert phone.page.evaluate(_PROBLEMS, None) == []
    assert dialog.evaluate(DIALOG_FITS)
    screenshot(phone.page, "in-use-choice-two-390-en")
    keys.press("Enter")

    phone.expect_devices_screen()                     # the choice committed with the sign-in
    assert [device.request("GET", "/session/me").status_code for device in (first, second, third)] == [401, 200, 401]


def test_a_chosen_device_that_ended_meanwhile_brings_the_question_again_with_the_new_list(make_server, new_device):
    """While the dialog waits, the device the person chose signs out and another signs in: Continue brings the
    dialog back, saying why, with the devices as they are now; continuing then signs out the default one."""
    url, ctx = make_server(max_concurrent_devices=2)
    first = register_device(url)
    first.login(PASSWORD)
    second, third = (add_device(ctx, first, name=name) for name in ("Den PC", "Attic PC"))
    second.login(PASSWORD)
    phone = new_device(url)
    phone.open()
    phone.pair(first.request_pairing()["qr_code"], first.key_file.username, device_name="Carol phone")
    say = texts("en")
    dialog = phone.page.locator("#concurrent-dialog")
    rows = dialog.locator("#concurrent-devices li")
    expect(rows.locator("strong")).to_have_text([first.key_file.device_name, "Den PC"])
    phone.page.keyboard.press("ArrowDown")            # Den PC instead of the first device
    expect(dialog.locator("input[name=displace]").nth(1)).to_be_checked()
    second.logout()
    third.login(PASSWORD)
    phone.page.keyboard.press("Enter")

    expect(dialog.locator("#concurrent-error")).to_have_text(say("web.concurrent.changed"))
    expect(rows.locator("strong")).to_have_text([first.key_file.device_name, "Attic PC"])
    expect(dialog.locator("input[name=displace]").nth(0)).to_be_checked()
    expect(dialog.locator("input[name=displace]").nth(0)).to_be_focused()
    phone.page.keyboard.press("Enter")
    phone.expect_devices_screen()
    assert [device.request("GET", "/session/me").status_code for device in (first, third)] == [401, 200]


def test_a_choice_the_server_does_not_take_is_said_and_asked_again_with_the_token_still_good(make_server, new_device):
    """A choice naming a session the question did not list (here a page whose radio was tampered with) is
    refused with 400 invalid_field `displace`: the dialog says so and asks again, and the default choice then
    signs in with the same confirmation."""
    url, _ = make_server()
    first = register_device(url)
    first.login(PASSWORD)
    phone = new_device(url)
    phone.open()
    phone.pair(first.request_pairing()["qr_code"], first.key_file.username, device_name="Carol phone")
    answers: list[tuple[int, str | None]] = []
    phone.page.on("response", lambda response: answers.append(
        (response.status, response.request.post_data_json.get("displace") and "displace"))
        if response.url.endswith("/login/confirm") else None)
    dialog = phone.page.locator("#concurrent-dialog")
    choice = dialog.locator("input[name=displace]")
    expect(choice).to_be_checked()
    choice.evaluate("(input) => { input.value = 'not-a-listed-session'; }")
    phone.page.keyboard.press("Enter")

    expect(dialog.locator("#concurrent-error")).to_have_text(texts("en")("web.concurrent.invalid"))
    expect(dialog).to_be_visible()
    expect(dialog.locator("#concurrent-devices li strong")).to_have_text([first.key_file.device_name])
    expect(choice).to_be_focused()
    phone.page.keyboard.press("Enter")               # the drawn-again list: the default, with the same token
    phone.expect_devices_screen()
    assert answers == [(400, "displace"), (200, None)]
    assert first.request("GET", "/session/me").status_code == 401
