"""The account pages in Chromium (issue 10 item 8): recovery codes shown once and used on a new
browser, the password changed on the Account page, and the e-mailed verification link."""
from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from accounts import user_service as users
from accounts.models import Role
from operators import service as operators
from operators.models import ActionRequest, LimitRequest
from sessions import service as sessions
from sessions.models import HistoryResult
from tests.conftest import unique_name
from tests.support.live import PASSWORD
from tests.support.waiting import wait_until

NEW_PASSWORD = "a brand new passphrase 42"
LINKS = {"verify_email": re.compile(r"/#verify=([A-Za-z0-9_-]+)"),
         "password_reset": re.compile(r"/#reset=([A-Za-z0-9_-]+)")}


class Recorder:
    """A notifier back end that keeps every message, so a test can follow the links in them."""

    def __init__(self) -> None:
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)

    def token(self, event: str, email: str, *, timeout: float = 30) -> str:
        """The token in the link of the last `event` message sent to `email`; some are sent off the
        response path (the reset link), so it waits for them a little."""
        deadline = time.monotonic() + timeout
        while not (bodies := [m.body for m in self.messages if m.event == event and m.email == email]):
            assert time.monotonic() < deadline, [(m.event, m.email) for m in self.messages]
            time.sleep(0.05)
        return LINKS[event].search(bodies[-1]).group(1)


def test_recovery_code_brings_a_new_browser_in_once(make_server, new_device):
    url, _ = make_server(max_concurrent_devices=2)
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    codes = a.recovery_codes
    assert len(codes) == 10 and len(set(codes)) == 10
    expect(a.page.locator("#codes-list li")).to_have_count(0)     # shown once: gone from the page

    b = new_device(url).open()                                     # a browser that holds no key
    b.recover(user, codes[0], device_name="Replacement laptop")
    b.expect_devices_screen()
    expect(b.device("Replacement laptop")).to_contain_text("This device")
    expect(b.device("Alice laptop")).to_be_visible()
    b.open_account()
    expect(b.page.locator("#codes-left")).to_contain_text("9 of 10")

    c = new_device(url).open()
    c.recover(user, codes[0], device_name="Thief laptop")
    expect(c.recover_form.locator(".error")).to_contain_text("each code works only once")
    expect(c.page.locator("#home-screen")).to_be_hidden()


def test_password_changed_on_the_account_page(make_server, new_device, screenshot):
    url, _ = make_server()
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")

    form = a.change_password("not my password", NEW_PASSWORD)
    expect(form.locator("#password-current-error")).to_be_visible()
    expect(a.page.locator("#home-screen")).to_be_visible()      # a wrong password is not a lost session
    form = a.change_password(PASSWORD, NEW_PASSWORD)
    expect(form.locator(".note")).to_contain_text("Your password was changed")
    expect(form.locator("#password-current-error")).to_be_hidden()
    a.page.evaluate("window.scrollTo(0, 0)")
    screenshot(a.page, "account", full_page=True)

    a.log_out()
    a.log_in(user, PASSWORD)
    expect(a.login_form.locator(".error")).to_be_visible()
    a.expect_login_screen()
    a.log_in(user, NEW_PASSWORD)
    a.expect_devices_screen()


def test_verification_link_marks_the_address_verified(make_server, new_device):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    account = a.open_account()
    expect(account.locator("#account-email-status")).to_have_text("Not verified")
    expect(account.get_by_role("button", name="Resend verification")).to_be_visible()

    token = recorder.token("verify_email", f"{user}@example.com")
    a.page.goto(f"{url}/#verify={token}")
    expect(a.page.locator("#notice")).to_contain_text("is verified")
    expect(a.page).to_have_url(f"{url}/")                         # the one-time token leaves the address bar
    a.open_account()
    expect(account.locator("#account-email-status")).to_have_text("Verified")
    expect(account.get_by_role("button", name="Resend verification")).to_be_hidden()

    a.page.goto(f"{url}/#verify={token}")                           # used once already
    expect(a.page.locator("#notice")).to_contain_text("already used")


def test_certificate_due_for_renewal_is_renewed_in_the_background(make_server, new_device):
    url, _ = make_server(cert_renew_before_days=3650)     # every certificate is due: each login renews
    a = new_device(url).open()
    warnings = []
    a.page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    with a.page.expect_response(lambda r: r.url.endswith("/device/renew")) as renewal:
        a.register(unique_name(), device_name="Alice laptop")
    assert renewal.value.status == 201, renewal.value.text()
    renewed = renewal.value.json()["fingerprint"]
    a.refresh_devices()
    expect(a.device("Alice laptop").locator("code")).to_have_attribute("title", renewed)

    # The old certificate is superseded: the next login works only with the stored new one.
    user = a.page.locator("#whoami-text").inner_text().split(" · ")[0]
    a.log_out()
    with a.page.expect_response(lambda r: r.url.endswith("/device/renew")) as again:
        a.log_in(user)
    a.expect_devices_screen()
    assert again.value.status == 201 and not warnings, warnings


def forgotten_password(make_server, new_device):
    """(url, a registered browser on the log-in screen, its user, the token of the reset link it asked for)."""
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.log_out()
    a.login_form.get_by_role("button", name="Forgot password?").click()
    forgot = a.page.locator("#forgot-form")
    forgot.get_by_label("E-mail").fill(f"{user}@example.com")
    forgot.get_by_role("button", name="Send the link").click()
    expect(forgot.locator(".note")).to_contain_text("If an account has this address")
    return url, a, user, recorder.token("password_reset", f"{user}@example.com")


def test_forgotten_password_is_reset_from_the_link(make_server, new_device):
    url, a, user, token = forgotten_password(make_server, new_device)
    a.page.goto(f"{url}/#reset={token}")
    dialog = a.page.locator("#reset-dialog")
    expect(dialog).to_be_visible()
    expect(a.page).to_have_url(f"{url}/")
    dialog.get_by_label("New password").fill("password")             # too common: refused, the link still works
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog.locator("#reset-password-error")).to_contain_text("too common")      # next to the field
    dialog.get_by_label("New password").fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog).to_be_hidden()
    expect(a.page.locator("#notice")).to_contain_text("new password is set")

    a.page.goto(f"{url}/#reset={token}")                              # single use
    dialog.get_by_label("New password").fill("another fine passphrase")
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog.locator(".error")).to_contain_text("already used")
    dialog.get_by_role("button", name="Cancel").click()
    a.log_in(user, NEW_PASSWORD)
    a.expect_devices_screen()


def test_a_reset_link_opened_again_as_its_dialog_closes_keeps_its_token(make_server, new_device):
    # The dialog's "close" event runs in a task of its own. A link that reopens the dialog before
    # that task (here at once, in the same task as the close) must not lose its token to it.
    url, a, _, token = forgotten_password(make_server, new_device)
    a.page.goto(f"{url}/#reset={token}")
    dialog = a.page.locator("#reset-dialog")
    expect(dialog).to_be_visible()
    a.page.evaluate("""(token) => {
        document.querySelector("#reset-dialog").close("cancel");
        location.hash = "#reset=" + token;
        window.dispatchEvent(new HashChangeEvent("hashchange"));
    }""", token)
    expect(dialog).to_be_visible()
    dialog.get_by_label("New password").fill(NEW_PASSWORD)
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog).to_be_hidden()
    expect(a.page.locator("#notice")).to_contain_text("new password is set")


def test_deleting_the_account_forgets_the_key(make_server, new_device):
    url, _ = make_server()
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    account = a.open_account()
    email = account.locator("#email-form")
    email.get_by_label("New e-mail").fill(f"{user}-new@example.com")
    email.get_by_label("Password").fill(PASSWORD)
    email.get_by_role("button", name="Change e-mail").click()
    expect(email.locator(".note")).to_contain_text(f"A link was sent to {user}-new@example.com")
    account.get_by_label("Language").select_option("ja")
    account.get_by_role("button", name="Save language").click()
    expect(account.locator("#locale-form .note")).to_contain_text("保存しました")     # the app speaks it at once
    a.switch_language("en")
    expect(account.locator("#locale-form .note")).to_contain_text("Saved")

    form = account.locator("#delete-form")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Delete my account").click()
    expect(form.locator(".error")).to_contain_text("Tick the box")
    form.get_by_label("I understand").check()
    form.get_by_role("button", name="Delete my account").click()

    a.expect_login_screen()
    expect(a.banner).to_contain_text("deleted")
    a.log_in(user)
    expect(a.login_form.locator(".error")).to_contain_text("holds no device key")


# The History panel, newest first: each row's words (en, ja) and its effect (data-effect, its colour).
HISTORY_WALK = [
    ("Signed in", "ログイン成功", "good"),
    ("Account unlocked by an operator", "オペレーターがアカウントのロックを解除", "good"),
    ("Refused: the account was locked", "拒否: アカウントがロック中", "bad"),
    ("Account locked by an operator", "オペレーターがアカウントをロック", "bad"),
    ("Password reset link sent by an operator", "オペレーターがパスワード再設定のリンクを送信", "neutral"),
    ("Device limit changed by an operator", "オペレーターが同時ログイン数の上限を変更", "neutral"),
    ("Refused: this device was removed from the account", "拒否: このデバイスはアカウントから削除済み", "bad"),
    ("Signed in", "ログイン成功", "good"),
]
RAW_CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")  # device_revoked, admin_action, password_reset, ...


def test_history_names_operator_actions_and_colours_rows_by_effect(make_server, new_device, screenshot):
    """Issue 43 item 5: an operator's actions in words without who or why, an unlock not red, the
    person's login refused while locked listed, and no raw code, in English and Japanese."""
    url, ctx = make_server()
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    user_uuid = users.find_uuid_by_username(ctx, username=user)
    ops = operators.Operator(role=Role.ADMIN, cli=True, name="ops-desk")
    # A refusal the web app met raw before (a removed device's login), written as the server writes it
    sessions.record_attempt(ctx, at=ctx.now(), user_uuid=user_uuid, result=HistoryResult.DEVICE_REVOKED, device_id=None,
                            ip="192.0.2.7", user_agent=None)
    operators.set_limit(ctx, operator=ops, user_uuid=user_uuid, request=LimitRequest(reason="two phones", limit=2))
    operators.start_password_reset(ctx, operator=ops, user_uuid=user_uuid, request=ActionRequest(reason="forgot"))
    operators.lock(ctx, operator=ops, user_uuid=user_uuid, request=ActionRequest(reason="ticket 7: stolen"))
    a.expect_login_screen()
    a.log_in(user)
    expect(a.login_form.locator(".error")).to_be_visible()
    operators.unlock(ctx, operator=ops, user_uuid=user_uuid, request=ActionRequest(reason="ticket 7: found"))
    a.log_in(user)
    a.expect_devices_screen()
    wait_until(lambda: len(sessions.history_page(ctx, user_uuid=user_uuid, limit=30, cursor=None)[0])
               == len(HISTORY_WALK), what="the refused and the last login's history rows, written after their answers")

    a.go("history")
    rows = a.page.locator("#history-rows tr")
    expect(rows).to_have_count(len(HISTORY_WALK))
    for language, column in (("en", 0), ("ja", 1)):
        if language == "ja":
            a.switch_language("ja")
        results = rows.locator("td[data-column='web.history.col_result']")
        expect(results).to_have_text([row[column] for row in HISTORY_WALK])
        text = a.page.locator("#history-panel").inner_text()
        assert not RAW_CODE.search(text), RAW_CODE.findall(text)
        assert "ops-desk" not in text and "ticket 7" not in text
        screenshot(a.page, f"history_operator_actions_{language}")
    assert [rows.nth(i).get_attribute("data-effect") for i in range(len(HISTORY_WALK))] == \
        [row[2] for row in HISTORY_WALK]
    colour = "getComputedStyle(el.querySelector(\"td[data-column='web.history.col_result']\")).color"
    good, neutral, bad = (rows.nth(i).evaluate(f"(el) => {colour}") for i in (1, 4, 2))
    assert len({good, neutral, bad}) == 3, (good, neutral, bad)   # an unlock is not coloured as a failure
