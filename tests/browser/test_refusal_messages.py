"""Every refusal the person's pages can meet has its own true message, in English and in Japanese, and
every ending of a session its own true banner (issue 43, Build 1).

The codes come from the server (common.errors.ErrorCode): each one is a message on the login form unless
it is listed below with where it goes instead, so a new code without a message fails here. Each language is
a test of its own, with its own server, page and account.

Real, end to end: the app's own logout in another tab of this device (its banner names the app), a logout
in another tab of this device (not "another device"), wrong passwords until the pause (too_many_attempts at
login), an operator ending the sessions and then locking the account (the open session's banners, then the
login refused with account_locked), and an unknown app sign-in request (oidc_request_unknown, on the page's
notice). Routed (Playwright answers POST /login/ and its challenge): every code of the walk, a code the page
has no message for (it shows the server's detail), and registration's too_many_attempts."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import Page, Route, expect

from accounts import user_service as users
from relying_parties import service as apps
from relying_parties.models import OidcClient
from common.errors import ApiError, ErrorCode
from operators import service as operators
from operators.models import ActionRequest
from tests.conftest import unique_name
from tests.support.live import PASSWORD
from tests.support.oidc import authorize_url, pkce_pair, query_of

pytestmark = pytest.mark.slow

LOCALES = Path(__file__).resolve().parents[2] / "common" / "locales"
BROWSER_LOCALE = {"en": "en-US", "ja": "ja-JP"}
APP = "https://app.example"
REDIRECT, AFTER_LOGOUT = f"{APP}/callback", f"{APP}/signed-out"
SUPPORT = operators.app_operator(client_id="helpdesk", admin_role="support")

# The codes no page of the person shows as a message, and what happens instead.
ANSWERED_ELSEWHERE = {
    "concurrent_login": "the in-use dialog asks whether to go on",
    "logout_confirmation_required": "the sign-out page asks first",
    "consent_required": "the sign-in page asks for consent",
    "use_dpop_nonce": "the SDK makes its proof again with the server's nonce",
    "too_many_streams": "only the event stream meets it, and the SDK reconnects later",
    "forbidden": "the operators' console", "reason_required": "the operators' console",
    "reauthentication_required": "the operators' console", "last_admin": "the operators' console",
    "invalid_client": "an app's own calls (token endpoint)", "app_not_found": "the operators' console",
    "stream_not_found": "an app's own calls (SSF)",
}
# Shown on the banner above the form: [title, text].
ON_THE_BANNER = {"device_revoked": ["web.banner.device_removed_here", "web.banner.device_removed_next"]}
# Shown next to their field, in web.field.* words (the field and kind as the server sends them).
AT_THE_FIELD = {"invalid_field": {"field": "password", "kind": "too_short"},
                "missing_fields": {"fields": ["username"]}}


def _catalogue(language: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{language}.json").read_text())


def _say(words: dict[str, str], key: str, **params: object) -> str:
    text = words[key]
    for name, value in params.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


def _statuses() -> dict[str, int]:
    """Each code's status, as the server's errors raise it."""
    found: dict[str, int] = {}
    classes = [ApiError]
    while classes:
        cls = classes.pop()
        found.setdefault(cls.code.value, cls.status)
        classes += cls.__subclasses__()
    return found


def _walked() -> list[str]:
    return [code.value for code in ErrorCode if code.value not in ANSWERED_ELSEWHERE]


def _expected(words: dict[str, str], code: str) -> str:
    key = next((k for k in (f"web.error.{code}.login", f"web.error.{code}") if k in words), None)
    assert key, f"no message for {code}: add web.error.{code} to both catalogues"
    return words[key]


def _field_text(words: dict[str, str], problem: dict) -> tuple[str, str]:
    """(the field, the words next to it) as ui.js picks them."""
    field = problem.get("field") or problem["fields"][0]
    kind = {"too_short": "length"}.get(problem.get("kind"), "required" if "fields" in problem else "invalid")
    key = next(k for k in (f"web.field.{field}.{kind}", f"web.field.{field}.invalid", f"web.field.{kind}",
                           "web.field.invalid") if k in words)
    return field, words[key]


class Answers:
    """Answers the page's POST to one path with the problem set last (Playwright's page.route)."""

    def __init__(self, page: Page, path: str) -> None:
        self.page, self.pattern, self.problem = page, re.compile(re.escape(path) + r"$"), {}
        page.route(self.pattern, self._answer)

    def _answer(self, route: Route) -> None:
        route.fulfill(status=self.problem["status"], content_type="application/problem+json",
                      body=json.dumps({"type": "about:blank", "title": "", **self.problem}))

    def stop(self) -> None:
        self.page.unroute(self.pattern, self._answer)


def _walk_the_login_form(page: Page, words: dict[str, str], user: str) -> list[str]:
    """Every walked code answered to the login form: its own words, never another code's."""
    form, statuses = page.locator("#login-form"), _statuses()
    form.locator("#login-username").fill(user)
    form.locator("#login-password").fill(PASSWORD)
    # The challenge too is answered here: the walk costs the server nothing.
    challenge, resume = re.compile(r"/login/challenge$"), re.compile(r"/session/resume$")
    page.route(challenge, lambda route: route.fulfill(status=201, json={"challenge": "c" * 43, "expires_in": 60}))
    # and the question whether this device holds a live session that the login would replace: it does not
    page.route(resume, lambda route: route.fulfill(status=401, content_type="application/problem+json", body=json.dumps(
        {"type": "about:blank", "title": "", "status": 401, "code": "login_required"})))
    answers, shown = Answers(page, "/login/"), {}
    for code in _walked():
        answers.problem = {"status": statuses.get(code, 400), "code": code, **AT_THE_FIELD.get(code, {}),
                           "detail": f"server detail of {code}"}
        form.locator("button[type=submit]").click()
        if code in ON_THE_BANNER:
            title, text = (words[key] for key in ON_THE_BANNER[code])
            expect(page.locator("#banner-title")).to_have_text(title)
            expect(page.locator("#banner-text")).to_have_text(text)
            continue
        if code in AT_THE_FIELD:
            field, text = _field_text(words, answers.problem)
            expect(page.locator(f"#login-{field}-error")).to_have_text(text)
            expect(form.locator(".error")).to_be_hidden()
            continue
        shown[code] = _expected(words, code)
        expect(form.locator(".error"), code).to_have_text(shown[code])
    # A code the page has no words for shows the server's detail (in the page's language), never a guess;
    # an answer without one says its status.
    answers.problem = {"status": 400, "code": "code_of_a_newer_server", "detail": "詳細 / the server's detail"}
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_have_text("詳細 / the server's detail")
    answers.problem = {"status": 418}
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_have_text(_say(words, "web.error.http", status=418))
    answers.stop()
    page.unroute(challenge)
    page.unroute(resume)
    generic = {words["web.error.unexpected"], words["web.error.http"]}
    assert not generic & set(shown.values())
    same = {code: text for code, text in shown.items() if list(shown.values()).count(text) > 1}
    assert not same, f"codes that share one message: {same}"
    return list(shown)


def _sign_in_to_the_app(tab: Page, url: str, credentials) -> str:
    """Notes signs in with this device's live session (single sign-on in a second tab); its ID token."""
    verifier, challenge = pkce_pair()
    tab.goto(authorize_url(url, response_type="code", client_id=credentials.app.client_id, redirect_uri=REDIRECT,
                           scope="openid", state="s-1", code_challenge=challenge, code_challenge_method="S256"))
    tab.wait_for_url(re.compile(re.escape(REDIRECT) + r"\?"))
    issued = requests.post(url + "/oidc/token", timeout=10, auth=(credentials.app.client_id, credentials.client_secret),
                           data={"grant_type": "authorization_code", "code": query_of(tab.url)["code"],
                                 "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert issued.status_code == 200, issued.text
    return issued.json()["id_token"]


def _expect_banner(page: Page, title: str, text: str) -> None:
    expect(page.locator("#banner-title")).to_have_text(title)
    expect(page.locator("#banner-text")).to_have_text(text)
    expect(page.locator("#login-form")).to_be_visible()


def _walk_one_language(language: str, url: str, ctx, credentials, new_device, screenshot) -> None:
    words = _catalogue(language)
    device = new_device(url, locale=BROWSER_LOCALE[language]).open()
    page, user = device.page, unique_name()
    device.register(user, device_name="Laptop")
    user_uuid = users.find_uuid_by_username(ctx, username=user)

    # Notes, signed in by single sign-on in a second tab, signs the person out there: this tab names it.
    page.context.route(re.compile(re.escape(APP) + "/"), lambda route: route.fulfill(body="Notes"))
    tab = page.context.new_page()
    id_token = _sign_in_to_the_app(tab, url, credentials)
    tab.goto(f"{url}/oidc/logout?" + urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": AFTER_LOGOUT,
                                                 "client_id": credentials.app.client_id}))
    tab.wait_for_url(re.compile(re.escape(AFTER_LOGOUT)))
    tab.close()
    _expect_banner(page, _say(words, "web.banner.app_signed_out", app="Notes"), words["web.banner.log_in_again"])

    walked = _walk_the_login_form(page, words, user)
    assert {"account_locked", "too_many_attempts", "invalid_credentials", "session_revoked"} <= set(walked)

    # Wrong passwords until logging in pauses (CITYLOGIN_LOGIN_MAX_FAILURES 2): real, with the login's words.
    error = page.locator("#login-form .error")
    for _ in range(2):
        device.log_in(user, "not the password 1")
        expect(error).to_have_text(words["web.error.invalid_credentials"])
    device.log_in(user, "not the password 2")
    expect(error).to_have_text(words["web.error.too_many_attempts.login"])
    operators.unlock(ctx, operator=SUPPORT, user_uuid=user_uuid, request=ActionRequest(reason="ticket 1"))

    # A logout in another tab of this device (one the page opened: it resumes the session): not "another device".
    device.log_in(user)
    device.expect_devices_screen()
    with page.context.expect_page() as opened:
        page.evaluate("window.open(location.href)")
    tab = opened.value
    tab.locator("#logout-button").click()
    expect(tab.locator("#login-form")).to_be_visible()
    tab.close()
    _expect_banner(page, words["web.banner.ended_here"], words["web.banner.ended_here_next"])

    # An operator ends the sessions (the account stays open), then locks the account while it is open: each
    # banner says which, and the login refuses the locked account.
    device.log_in(user)
    device.expect_devices_screen()
    operators.revoke_sessions(ctx, operator=SUPPORT, user_uuid=user_uuid, request=ActionRequest(reason="ticket 2"))
    _expect_banner(page, words["web.banner.admin_sessions_ended"], words["web.banner.log_in_again"])
    device.log_in(user)
    device.expect_devices_screen()
    operators.lock(ctx, operator=SUPPORT, user_uuid=user_uuid, request=ActionRequest(reason="ticket 3"))
    _expect_banner(page, words["web.banner.admin_locked"], words["web.banner.admin_locked_next"])
    screenshot(page, f"locked-banner-{language}")
    device.log_in(user)
    expect(error).to_have_text(words["web.error.account_locked"])

    # Creating an account too often from one network: registration's own words.
    answers = Answers(page, "/registration/")
    answers.problem = {"status": 429, "code": "too_many_attempts", "retry_after": 60}
    device.fill_register_form(unique_name(), device_name="Laptop")
    expect(page.locator("#register-form .error")).to_have_text(words["web.error.too_many_attempts.register"])
    answers.stop()

    # An app's sign-in request that the server does not know: the page's notice says so.
    tab = page.context.new_page()
    tab.goto(f"{url}/#oidc={'x' * 32}")
    expect(tab.locator("#notice-text")).to_have_text(words["web.error.oidc_request_unknown"])
    tab.close()


# One test per language, so that two workers can share the walks.
@pytest.mark.parametrize("language", list(BROWSER_LOCALE))
def test_every_refusal_and_every_ending_says_its_own_truth(language, make_server, new_device, screenshot):
    url, ctx = make_server(host_name="127.0.0.1", login_max_failures=2)
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), post_logout_redirect_uris=(AFTER_LOGOUT,)))
    _walk_one_language(language, url, ctx, credentials, new_device, screenshot)
