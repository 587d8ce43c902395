"""Pairing as a person does it (issue 11 item 2): the QR code holds a link that opens the pair form
on the new device; the QR page counts down, says when its code expired or was used."""
from __future__ import annotations

import base64
import io
import re

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import unique_name
from tests.support.live import FakeClock
from tests.support.ttl_sweep import sweep_pairing_tokens

# Stands in for a browser with the Shape Detection API: it "reads" window.scannedText on the third
# frame, from a canvas stream in place of a camera.
FAKE_CAMERA = """
window.BarcodeDetector = class {
  static async getSupportedFormats() { return ["qr_code", "ean_13"]; }
  constructor() { this.frames = 0; }
  async detect(source) {
    if (!(source instanceof HTMLVideoElement) || !source.srcObject) throw new TypeError("no video");
    this.frames += 1;
    return this.frames < 3 ? [] : [{ format: "qr_code", rawValue: window.scannedText }];
  }
};
navigator.mediaDevices.getUserMedia = async () => {
  const canvas = Object.assign(document.createElement("canvas"), { width: 64, height: 64 });
  canvas.getContext("2d").fillRect(0, 0, 64, 64);
  return canvas.captureStream(10);
};
"""


def _public_url_is(ctx, url: str) -> None:
    ctx.settings = ctx.settings.model_copy(update={"public_url": url})   # the QR links lead to this server


def _qr_text(page) -> str:
    """What a camera reads from the QR image on the page."""
    data_uri = page.locator("#pairing-qr").get_attribute("src")
    image = Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1
    return results[0].text


def _register(a) -> str:
    """Device A creates an account through the UI and stays signed in; its username."""
    user = unique_name()
    a.open().register(user, device_name="Alice laptop")
    return user


def test_opening_the_qr_link_in_a_second_browser_pairs_it(make_server, new_device, screenshot):
    url, ctx = make_server()
    _public_url_is(ctx, url)
    a = new_device(url)
    user = _register(a)
    link = a.show_pairing_link()
    assert link.startswith(f"{url}/#pair=")
    assert _qr_text(a.page) == link
    expect(a.page.locator("#pairing-link")).to_have_attribute("href", link)
    expect(a.page.locator("#pairing-countdown")).to_have_text(re.compile(r"^Expires in (10:00|09:[0-5]\d)$"))

    b = new_device(url)
    form = b.open_pairing_link(link)
    assert "#pair" not in b.page.url                 # the one-time code left the address bar
    expect(form.locator("#pair-filled")).to_contain_text("filled in")
    expect(form.locator("#pair-scan-area")).to_be_hidden()    # Debian's Chromium has no BarcodeDetector
    screenshot(b.page, "pair_link_opened")
    b.send_pair_form(user, device_name="Bob phone")
    dialog = b.page.locator("#concurrent-dialog")    # registered; A is still signed in, as with any pairing
    expect(dialog).to_be_visible()

    state = a.page.locator("#pairing-state")
    expect(state).to_contain_text("Paired: Bob phone", timeout=8000)
    expect(a.page.locator("#pairing-qr")).to_be_hidden()
    expect(a.page.locator("#pairing-countdown")).to_be_hidden()
    expect(state.locator("#pairing-renew")).to_be_visible()
    screenshot(a.page, "qr_paired")

    dialog.get_by_role("button", name="Continue").click()
    b.expect_devices_screen()
    expect(b.device("Bob phone")).to_contain_text("This device")

    c = new_device(url)                              # the same link again: used up
    c.open_pairing_link(link)
    c.send_pair_form(user, device_name="Carol tablet")
    expect(c.pair_form.locator(".error")).to_have_text(
        "This pairing code was already used. Show a new one on your other device.")


def test_expired_code_on_the_qr_page_and_on_the_new_device_in_its_language(make_server, new_device, screenshot):
    url, ctx = make_server()
    _public_url_is(ctx, url)
    a = new_device(url)
    a.page.clock.install()                           # the page's timers, fast-forwarded below
    user = _register(a)
    link = a.show_pairing_link()
    ctx.clock = clock = FakeClock()
    clock.advance(601)                               # past the 600 s CITYLOGIN_PAIRING_TOKEN_TTL on the server
    a.page.clock.fast_forward("09:58")
    expect(a.page.locator("#pairing-countdown")).to_have_text(re.compile(r"^Expires in 00:0[0-3]$"))
    a.page.clock.fast_forward(5000)
    state = a.page.locator("#pairing-state")
    expect(state).to_contain_text("This code has expired")
    expect(a.page.locator("#pairing-qr")).to_be_hidden()
    expect(a.page.locator("#pairing-output")).to_have_class(re.compile(r"\bexpired\b"))
    screenshot(a.page, "qr_expired")

    b = new_device(url, locale="ja-JP")
    b.open_pairing_link(link)
    expect(b.page.locator("html")).to_have_attribute("lang", "ja")
    b.send_pair_form(user, device_name="Bob phone")
    expect(b.pair_form.locator(".error")).to_have_text(
        "このペアリングコードは有効期限が切れています。もう一方のデバイスで新しいコードを表示してください。")
    screenshot(b.page, "pair_link_expired_ja")

    state.locator("#pairing-renew").click()          # a new code, live again
    expect(a.page.locator("#pairing-payload")).not_to_have_value(link)
    expect(a.page.locator("#pairing-qr")).to_be_visible()
    expect(state).to_be_hidden()
    expect(a.page.locator("#pairing-countdown")).to_have_text(re.compile(r"^Expires in (10:00|09:[0-5]\d)$"))


def test_camera_scan_fills_the_code_where_the_browser_reads_qr_codes(make_server, new_device, screenshot):
    url, _ = make_server()
    b = new_device(url)
    b.page.context.add_init_script(FAKE_CAMERA)
    b.open()
    b.go("pair")
    link = "https://login.example.org/#pair=eyJ2IjoxfQ"
    b.page.evaluate("(text) => { window.scannedText = text; }", link)
    scan = b.pair_form.locator("#pair-scan")
    expect(scan).to_have_text("Scan with camera")
    scan.click()
    screenshot(b.page, "pair_scan")
    expect(b.pair_form.locator("#pair-code")).to_have_value(link)
    expect(b.pair_form.locator("#pair-video")).to_be_hidden()       # the camera is off again
    expect(scan).to_have_text("Scan with camera")
    expect(b.pair_form.locator("#pair-filled")).to_contain_text("The QR code was read")
    expect(b.pair_form.locator("#pair-username")).to_be_focused()


def test_a_code_dynamodb_has_already_swept_still_says_show_a_new_one(make_server, new_device, screenshot):
    # Issue 16 item 17: DynamoDB deletes expired items some time after they expire; an expired
    # code must still read "expired, show a new one", not "unknown", in either language.
    url, ctx = make_server()
    _public_url_is(ctx, url)
    a = new_device(url)
    user = _register(a)
    link = a.show_pairing_link()
    ctx.clock = clock = FakeClock()
    clock.advance(3600)                              # an hour after the 600 s code expired,
    sweep_pairing_tokens(ctx, now=int(clock().timestamp()))   # and after DynamoDB's TTL sweep
    expired = {"en-GB": "This pairing code has expired. Show a new one on your other device.",
               "ja-JP": "このペアリングコードは有効期限が切れています。"
                        "もう一方のデバイスで新しいコードを表示してください。"}
    for locale, text in expired.items():
        b = new_device(url, locale=locale)
        b.open_pairing_link(link)
        b.send_pair_form(user, device_name="Bob phone")
        expect(b.pair_form.locator(".error")).to_have_text(text)
    screenshot(b.page, "pair_link_expired_swept_ja")
