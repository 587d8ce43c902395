"""Layout on a laptop and a phone, in English and Japanese: one person (an operator too) walks every
screen that matters at 390 px and 1280 px wide, and on each the header's and the tabs' elements do
not overlap, no tab label, header link or table header cell breaks inside a word, the tabs keep one
row (fitting it from 390 px up), the console's search labels sit right above their fields, the
username in the header is shown whole and the page never scrolls sideways (a wide table scrolls in
its panel)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts import user_service as users
from accounts.models import Role
from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import Client
from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.live import PASSWORD
from tests.support.oidc import signed_in_tokens

pytestmark = pytest.mark.slow

WIDTHS = (390, 1280)
HEIGHT = 844
LANGUAGES = ("en", "ja")
DEVICE_NAME = "Hanako's laptop at home"
HOME_TABS = ("devices", "sessions", "history", "add-device", "account")
USERNAME_PREFIX = "hanako_yamada_shibuya_"   # + 10 characters: as long as a username may be (32)
REDIRECT = "https://app.example/callback"

# Returns what is wrong with the page as it is drawn now, as sentences (empty: nothing).
# Lines of a text are counted from its glyph boxes: a new line starts where a box's top is lower
# than the previous line's by more than half a box.
_PROBLEMS = """(username) => {
  const problems = [];
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const name = (el) => el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${el.className || ""}`
    + ` "${el.textContent.trim().slice(0, 20)}"`;
  const lines = (el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const boxes = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0)
      .sort((a, b) => a.top - b.top);
    let count = 0, top = -Infinity;
    for (const box of boxes) if (box.top > top + box.height / 2) { count += 1; top = box.top; }
    return count;
  };
  const overlap = (a, b) => {
    const r = a.getBoundingClientRect(), s = b.getBoundingClientRect();
    return Math.min(r.right, s.right) - Math.max(r.left, s.left) > 0.5
      && Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top) > 0.5;
  };
  const apart = (elements, where) => {
    for (let i = 0; i < elements.length; i += 1)
      for (let j = i + 1; j < elements.length; j += 1)
        if (overlap(elements[i], elements[j]))
          problems.push(`${where}: ${name(elements[i])} overlaps ${name(elements[j])}`);
  };
  const oneLine = (elements, where) => {
    for (const el of elements) {
      const n = lines(el);
      if (n !== 1) problems.push(`${where}: ${name(el)} takes ${n} lines`);
    }
  };
  const inside = (elements, where) => {
    for (const el of elements) {
      const r = el.getBoundingClientRect();
      if (r.left < -0.5 || r.right > innerWidth + 0.5) problems.push(`${where}: ${name(el)} leaves the screen`);
    }
  };

  const header = document.querySelector("header.topbar");
  const parts = [...header.querySelectorAll(".brand, .whoami-user, .whoami-detail, .whoami a, button")]
    .filter(shown);
  apart(parts, "header");
  inside(parts, "header");
  oneLine(parts.filter((el) => !el.matches(".whoami-user, .whoami-detail")), "header");
  const logout = header.querySelector("#logout-button"), english = header.querySelector("#language-en");
  if (logout && shown(logout)
      && Math.abs(logout.getBoundingClientRect().top - english.getBoundingClientRect().top) > 1)
    problems.push("header: Log out is not on the language switch's row");
  const user = header.querySelector(".whoami-user");
  if (username !== null) {               // shown whole: neither cut by its line nor in its own box
    const line = user && user.closest(".whoami-text");
    if (!user || !shown(user)) problems.push("header: no username shown");
    else if (user.textContent !== username || user.scrollWidth > user.clientWidth + 0.5
             || user.getBoundingClientRect().right > line.getBoundingClientRect().right + 0.5)
      problems.push(`header: the username "${user.textContent}" is cut`);
  }

  // The tabs keep one row: from 390 px up they fit it, below it scrolls sideways in its own box.
  for (const tabs of [...document.querySelectorAll(".tabs")].filter(shown)) {
    const buttons = [...tabs.querySelectorAll("button")].filter(shown);
    apart(buttons, "tabs");
    oneLine(buttons, "tabs");
    const row = buttons.length ? buttons[0].getBoundingClientRect().top : 0;
    for (const el of buttons)
      if (Math.abs(el.getBoundingClientRect().top - row) > 0.5) problems.push(`tabs: ${name(el)} is on a second row`);
    const scrolls = tabs.scrollWidth > tabs.clientWidth + 0.5;
    if (scrolls && innerWidth >= 390) problems.push(`tabs: they scroll in ${innerWidth}px`);
    inside(scrolls ? [tabs] : buttons, "tabs");
  }
  // The console's search: each label right above its field; labels side by side have fields side by side.
  const labels = [...document.querySelectorAll(".search-row label[for]")].filter(shown);
  const field = (label) => document.getElementById(label.htmlFor).getBoundingClientRect();
  for (const label of labels) {
    const l = label.getBoundingClientRect(), f = field(label);
    if (Math.abs(l.left - f.left) > 0.5 || l.bottom > f.top + 0.5 || f.top - l.bottom > 12)
      problems.push(`search: ${name(label)} is not right above its field`);
  }
  for (let i = 1; i < labels.length; i += 1) {
    const a = field(labels[i - 1]), b = field(labels[i]);
    const top = (label) => label.getBoundingClientRect().top;
    const sideBySide = Math.abs(top(labels[i - 1]) - top(labels[i])) < 0.5;
    if (sideBySide && (Math.abs(a.top - b.top) > 0.5 || Math.abs(a.bottom - b.bottom) > 0.5))
      problems.push(`search: the fields of ${name(labels[i - 1])} and ${name(labels[i])} are not level`);
  }
  oneLine([...document.querySelectorAll("main .panel-head button")].filter(shown), "panel");
  // Header cells as drawn (on a phone the tables are cards and their header rows only for readers).
  oneLine([...document.querySelectorAll("main thead")].filter((head) => shown(head)
    && head.getBoundingClientRect().height > 1).flatMap((head) => [...head.querySelectorAll("th")])
    .filter((th) => th.textContent.trim()), "table header");
  if (document.documentElement.scrollWidth > innerWidth) {
    const wide = [...document.querySelectorAll("main *")].filter((el) => shown(el)
      && el.getBoundingClientRect().right > innerWidth + 0.5 && !el.closest(".table-scroll"));
    problems.push(`the page is ${document.documentElement.scrollWidth}px wide in a ${innerWidth}px screen: `
      + wide.slice(-3).map(name).join(", "));
  }
  return problems;
}"""


class Walk:
    """One page resized and switched between languages; what is wrong is kept, per state."""

    def __init__(self, device: DevicePage, screenshot) -> None:
        self.page, self.screenshot = device.page, screenshot
        self.problems: list[str] = []
        self.states: list[str] = []
        self.username: str | None = None

    def check(self, state: str, *, widths: tuple[int, ...] = WIDTHS, shots: tuple[int, ...] = ()) -> None:
        """Checks `state` at each width, in the language the page shows now."""
        locale = self.page.locator("html").get_attribute("lang")
        for width in widths:
            self.page.set_viewport_size({"width": width, "height": HEIGHT})
            self.page.wait_for_function("(width) => innerWidth === width", arg=width)
            label = f"{state} {width}px {locale}"
            self.states.append(label)
            self.problems += [f"{label}: {p}" for p in self.page.evaluate(_PROBLEMS, self.username)]
            if width in shots:
                self.page.mouse.move(0, HEIGHT - 1)     # no tab drawn as hovered
                self.screenshot(self.page, f"layout-{state}-{width}-{locale}")


def _drawn(device: DevicePage, tab: str) -> None:
    """Waits until the tab's panel shows what it read."""
    page = device.page
    panel = page.locator(f"section[data-panel='{tab}']")
    expect(panel).to_be_visible()
    expect(panel).not_to_have_attribute("aria-busy", "true")
    if tab == "devices":
        device.expect_devices_screen()
    elif tab == "sessions":
        expect(page.locator("#session-rows tr").first).to_be_visible()
    elif tab == "history":
        expect(page.locator("#history-rows tr").first).to_be_visible()
    elif tab == "account":
        device.expect_account_drawn()


def _phone_signed_in_to_an_app(url: str, ctx, payload: str, username: str) -> None:
    """A second device of the person (the Python client) logs in and signs in to an app: a session
    row with its app in the Sessions table."""
    phone = Client(url)
    phone.pair(payload, username=username, password=PASSWORD, device_name="Hanako's phone")
    phone.login(PASSWORD)
    app = apps.add_app(ctx, name="Shibuya Library reading room", push_url=None,
                       oidc=OidcClient(redirect_uris=(REDIRECT,)))
    signed_in_tokens(url, app, phone, redirect_uri=REDIRECT)


def test_no_overlap_at_390_and_1280_px_in_english_and_japanese(make_server, new_device, screenshot):
    url, ctx = make_server(max_concurrent_devices=2)
    device = new_device(url, locale="en-US", viewport={"width": WIDTHS[-1], "height": HEIGHT}).open()
    walk = Walk(device, screenshot)
    page = device.page

    for locale in LANGUAGES:                  # signed out: the login screen
        device.switch_language(locale)
        walk.check("login")

    username = unique_name(USERNAME_PREFIX)
    device.register(username, device_name=DEVICE_NAME)
    device.log_out()                          # an ended session for the Sessions table
    device.log_in(username)
    device.expect_devices_screen()
    walk.username = username
    assert page.locator("#whoami-text").inner_text() == f"{username} · {DEVICE_NAME}"
    _phone_signed_in_to_an_app(url, ctx, device.show_pairing_code(), username)
    device.go("sessions")
    page.locator("#sessions-show-ended").check()
    for locale in ("ja", "en"):
        device.switch_language(locale)
        for tab in HOME_TABS:
            device.go(tab)
            if tab == "add-device" and page.locator("#pairing-output").is_hidden():
                page.locator("#pairing-create").click()
                expect(page.locator("#pairing-payload")).not_to_have_value("")
            _drawn(device, tab)
            walk.check(tab, widths=(360, *WIDTHS, 700) if tab == "devices" else WIDTHS,  # a small phone, a tablet
                       shots=(390, 1280) if tab == "sessions" else (390, 700) if tab == "devices" else ())

    user_uuid = users.find_uuid_by_username(ctx, username=username)
    assert user_uuid
    users.set_role(ctx, user_uuid=user_uuid, role=Role.ADMIN, granted=True)
    page.goto(f"{url}/admin/")
    expect(page.locator("#console")).to_be_visible()
    for locale in ("en", "ja"):               # the console's main view: the search
        device.switch_language(locale)
        walk.check("console")
    form = page.locator("#search-form")       # an account's page: the operator's own
    form.locator("#search-value").fill(username)
    form.locator("button[type=submit]").click()
    form.locator("#search-results button").first.click()
    view = page.locator("#account-view")
    for locale in ("ja", "en"):
        device.switch_language(locale)
        expect(view).to_be_visible()
        expect(view).not_to_have_attribute("aria-busy", "true")
        expect(view.locator("#session-rows tr").first).to_be_visible()
        walk.check("console-account", shots=(390, 1280) if locale == "ja" else ())

    print(f"layout: {len(walk.states)} states checked:", ", ".join(walk.states))
    assert not walk.problems, "\n".join(walk.problems)
