"""A branded deployment as a person sees it (CITYLOGIN_BRAND_DIR, docs/guides/branding.md), in Chromium,
in English and Japanese, on a phone (390 px) and a desktop (1280 px): the sign-in, registration and
pairing screens, an app's consent and logout pages, /oidc's own error page and the operators' console
show the brand's name, logo and colours and never "citylogin" (the title and every visible text); the
mail a registration sends is in the brand's words, from its name. An unbranded app beside it stays as
it was.

The guide's picture is the English desktop sign-in screen. To remake it (Chromium at /usr/bin/chromium):

    DOCS_IMAGES=1 .venv/bin/python -m pytest tests/browser/test_branding.py -q -k sign_in_screens

which copies tests/screenshots/branded-sign-in.png into docs/images/."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts import user_service as users
from accounts.models import Role
from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.conftest import unique_name
from tests.support.oidc import authorize_url, pkce_pair

DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "branded-sign-in.png"
BRAND = {"name": "Acme ID", "mail_from": "Acme accounts",
         "colors": {"accent": "#0b7a5a", "accent-dark": "#075c43", "accent-soft": "#e3f4ee"}}
LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        '<rect width="64" height="64" rx="14" fill="#0b7a5a"/>'
        '<path d="M18 48 L32 14 L46 48 M23 37 H41" stroke="#fff" stroke-width="6" fill="none"'
        ' stroke-linecap="round" stroke-linejoin="round"/></svg>')
TEXTS = {"en": {"web.login.title": "Sign in to Acme", "mail.registered.subject": "Welcome to Acme"},
         "ja": {"web.login.title": "Acme にサインイン", "mail.registered.subject": "Acme へようこそ"}}
ACCENT = "rgb(11, 122, 90)"          # #0b7a5a
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
BROWSER_LOCALES = {"en": "en-US", "ja": "ja-JP"}
EVERY = [(locale, size) for locale in ("en", "ja") for size in ("phone", "desktop")]
# What the person sees: the tab's title and the text of everything rendered (innerText leaves hidden nodes out).
SHOWN = "() => document.title + '\\n' + document.body.innerText"


@pytest.fixture
def brand_dir(tmp_path) -> Path:
    folder = tmp_path / "acme"
    (folder / "texts").mkdir(parents=True)
    (folder / "brand.json").write_text(json.dumps(BRAND))
    (folder / "logo.svg").write_text(LOGO)
    for locale, texts in TEXTS.items():
        (folder / "texts" / f"{locale}.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return folder


def expect_branded(page: Page) -> None:
    shown = page.evaluate(SHOWN)
    assert "citylogin" not in shown.lower(), shown


def expect_brand_header(page: Page, title: str) -> None:
    expect(page).to_have_title(title)
    logo = page.locator("header .brand img.brand-logo")
    expect(logo).to_be_visible()
    assert page.evaluate("() => document.querySelector('header .brand-logo').naturalWidth") > 0


def accent_of(page: Page, selector: str) -> str:
    return page.locator(selector).evaluate("(node) => getComputedStyle(node).backgroundColor")


@pytest.mark.parametrize(("locale", "size"), EVERY)
def test_the_sign_in_screens_show_the_brand(make_server, new_device, brand_dir, screenshot, locale, size):
    url, _ = make_server(brand_dir=str(brand_dir))
    device = new_device(url, viewport=VIEWPORTS[size], locale=BROWSER_LOCALES[locale]).open()
    page = device.page
    expect(page.locator("html")).to_have_attribute("lang", locale)
    expect_brand_header(page, "Acme ID")
    expect(page.locator("header .brand")).to_have_text("Acme ID")
    expect(page.locator("#login-form h1")).to_have_text(TEXTS[locale]["web.login.title"])
    assert accent_of(page, "#login-form button[type=submit]") == ACCENT
    expect_branded(page)
    guide = (locale, size) == ("en", "desktop")           # the guide's picture
    shot = screenshot(page, "branded-sign-in" if guide else f"branded-sign-in-{locale}-{size}")
    if guide and os.environ.get("DOCS_IMAGES"):
        shutil.copyfile(shot, DOCS_IMAGE)
    for panel in ("register", "pair", "login"):
        device.go(panel)
        expect(page.locator(f"#{panel}-form")).to_be_visible()
        expect_branded(page)
    for link, panel in (("forgot", "#forgot-form"), ("recover", "#recover-form")):
        device.go("login")
        page.locator(f"#login-form [data-show={link}]:visible").click()
        expect(page.locator(panel)).to_be_visible()
        expect_branded(page)


class Tee:
    """The app's own back end (the console's, which logs the sender), keeping each message too."""

    def __init__(self, backend) -> None:
        self.backend, self.messages = backend, []

    def send(self, message) -> None:
        self.messages.append(message)
        self.backend.send(message)


@pytest.mark.parametrize(("locale", "size"), [("en", "desktop"), ("ja", "phone")])
def test_registration_mail_consent_logout_and_error_pages_show_the_brand(make_server, new_device, brand_dir,
                                                                         caplog, locale, size):
    url, ctx = make_server(brand_dir=str(brand_dir), host_name="127.0.0.1")   # its own public URL: the sign-in page
    ctx.notifier.backend = mail = Tee(ctx.notifier.backend)
    device = new_device(url, viewport=VIEWPORTS[size], locale=BROWSER_LOCALES[locale]).open()
    page, username = device.page, unique_name("ada")
    with caplog.at_level(logging.INFO, logger="citylogin.notify"):
        device.register(username, device_name="Ada's laptop")
    expect_branded(page)
    welcome = [m for m in mail.messages if m.event == "registered"]
    assert [m.subject for m in welcome] == [TEXTS[locale]["mail.registered.subject"]]
    assert mail.messages and not [m for m in mail.messages if "citylogin" in f"{m.subject}{m.body}".lower()]
    assert f"From: Acme accounts\nSubject: {welcome[0].subject}\n" in caplog.text

    app = apps.add_app(ctx, name="Notes", push_url=None,
                       oidc=OidcClient(redirect_uris=(f"{url}/healthz",), consent=True)).app
    _, challenge = pkce_pair()
    page.goto(authorize_url(url, response_type="code", client_id=app.client_id, redirect_uri=f"{url}/healthz",
                            scope="openid profile", state="s1", code_challenge=challenge, code_challenge_method="S256"))
    expect(page.locator("#consent-dialog")).to_be_visible()
    consent = {"en": "Allow Notes to use your Acme ID account?",
               "ja": "Notes に Acme ID アカウントの利用を許可しますか？"}
    expect(page.locator("#consent-title")).to_have_text(consent[locale])
    expect_brand_header(page, "Acme ID")
    expect_branded(page)
    page.locator("#consent-dialog button[value=deny]").click()
    page.wait_for_url(f"{url}/healthz?**")

    page.goto(f"{url}/oidc/logout?client_id={app.client_id}")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    question = {"en": "Sign out of Acme ID?", "ja": "Acme ID からログアウトしますか？"}
    expect(page.locator("#confirm-title")).to_have_text(question[locale])
    expect_branded(page)
    page.locator("#confirm-ok").click()
    device.expect_login_screen()
    expect(device.banner).to_be_visible()
    expect_branded(page)

    page.goto(f"{url}/oidc/authorize?client_id=nobody&response_type=code")
    expect(page.locator("main.oidc-page .card")).to_be_visible()
    home = {"en": "Acme ID home", "ja": "Acme ID のホーム"}
    expect(page.locator(".oidc-page-ways a")).to_have_text(home[locale])
    expect_branded(page)


@pytest.mark.parametrize(("locale", "size"), EVERY)
def test_the_console_shows_the_brand(make_server, new_device, brand_dir, screenshot, locale, size):
    url, ctx = make_server(brand_dir=str(brand_dir))
    device = new_device(url, viewport=VIEWPORTS[size], locale=BROWSER_LOCALES[locale]).open()
    username = unique_name("op")
    device.register(username, device_name="Operator's laptop")
    operator = users.find_uuid_by_username(ctx, username=username)
    assert operator
    users.set_role(ctx, user_uuid=operator, role=Role.ADMIN, granted=True)
    page = device.page
    page.goto(f"{url}/admin/")
    expect(page.locator("#search-form")).to_be_visible()
    title = {"en": "Acme ID · operators' console", "ja": "Acme ID · オペレーター コンソール"}
    expect_brand_header(page, title[locale])
    assert accent_of(page, "#search-form button[type=submit]") == ACCENT
    expect_branded(page)
    screenshot(page, f"branded-console-{locale}-{size}")


def test_an_unbranded_app_beside_a_branded_one_stays_as_it_was(make_server, new_device, brand_dir):
    branded, _ = make_server(brand_dir=str(brand_dir))
    plain, _ = make_server()
    acme = new_device(branded).open()
    page = new_device(plain).open().page
    expect(acme.page).to_have_title("Acme ID")
    expect(page).to_have_title("citylogin")
    expect(page.locator("header .brand")).to_have_text("citylogin")
    expect(page.locator(".brand-logo")).to_have_count(0)
    assert accent_of(page, "#login-form button[type=submit]") == "rgb(33, 82, 204)"     # app.css's #2152cc


# Where a box stands on the page: its left and right edges, in CSS pixels.
EDGES = "(node) => { const box = node.getBoundingClientRect(); return [box.left, box.right]; }"


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_the_oidc_error_page_has_the_brand_and_the_sign_in_pages_margins_on_a_phone(make_server, new_device,
                                                                                     brand_dir, screenshot, locale):
    """Issue 65: /oidc's own error page at 390 px shows the brand's logo and name in the sign-in page's top bar,
    and its card stands where the sign-in page's does: margins on both sides, nothing wider than the screen."""
    url, _ = make_server(brand_dir=str(brand_dir))
    device = new_device(url, viewport=VIEWPORTS["phone"], locale=BROWSER_LOCALES[locale]).open()
    page = device.page
    sign_in = device.login_form.evaluate(EDGES)
    page.goto(f"{url}/oidc/authorize?client_id=nobody&response_type=code")
    card = page.locator(".oidc-page > .card")
    expect(card).to_be_visible()
    expect(page.locator("header .brand")).to_have_text("Acme ID")
    expect_brand_header(page, {"en": "This sign-in cannot go on", "ja": "このサインインは続けられません"}[locale])
    edges = card.evaluate(EDGES)
    assert edges == sign_in, (edges, sign_in)                            # the sign-in page's margins
    assert edges[0] >= 8 and edges[1] <= VIEWPORTS["phone"]["width"] - 8, edges
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS["phone"]["width"]
    expect_branded(page)
    screenshot(page, f"branded-oidc-error-{locale}-phone")
