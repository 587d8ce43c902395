"""The operators' console at /admin/ (SPEC §15) in Chromium: a person signed in on `/` whose account
holds an operator role finds an account, reads its page and acts on it with a reason, re-authenticated
up front once their sign-in is older than the window (a success renews it); the focus goes to each
action's result; the audit trail speaks in words, in English and Japanese; with DynamoDB failing the
console shows the server's 503 text and nothing is done; the buttons follow the role, and the API
refuses what the role does not allow."""
from __future__ import annotations

import json
import re
import time
from typing import Callable

import pytest
from joserfc.jwk import ECKey
from playwright.sync_api import Locator, Page, expect

from accounts import user_service as users
from accounts.models import Role
from relying_parties import service as apps
from citylogin.client.api import CityloginError, Client
from common.version import running_version
from sessions import service as sessions
from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, register_device, settle_background


class Recorder:
    """A notifier back end that keeps every message."""

    def __init__(self) -> None:
        self.messages: list = []

    def send(self, message) -> None:
        self.messages.append(message)

    def events_to(self, email: str) -> set[str]:
        return {m.event for m in self.messages if m.email == email}


def operator(new_device, url: str, ctx, role: Role | None) -> DevicePage:
    """A person registered and signed in in the browser, holding `role` (None: none)."""
    device = new_device(url).open()
    username = unique_name("op")
    device.register(username, device_name="Operator laptop")
    if role is not None:
        user_uuid = users.find_uuid_by_username(ctx, username=username)
        assert user_uuid
        users.set_role(ctx, user_uuid=user_uuid, role=role, granted=True)
    return device


def age_sign_in(ctx, username: str, seconds: int) -> None:
    """Moves the sign-in of the person's sessions `seconds` into the past, as if made that long ago."""
    user_uuid = users.find_uuid_by_username(ctx, username=username)
    assert user_uuid
    for session in sessions.list_user_sessions(ctx, user_uuid=user_uuid):
        ctx.dynamodb.update_item(TableName=ctx.tables.sessions, Key={"session_id": {"S": session.session_id}},
                                 UpdateExpression="SET login_epoch = login_epoch - :s",
                                 ExpressionAttributeValues={":s": {"N": str(seconds)}})


def person(url: str) -> Client:
    """The person acted upon: registered and logged in over HTTP."""
    client = register_device(url)
    client.login(PASSWORD)
    return client


def open_console(device: DevicePage) -> Page:
    page = device.page
    page.goto(f"{device.url}/admin/")
    expect(page.locator("#console")).to_be_visible()
    return page


def find(page: Page, value: str, *, key: str = "username") -> Locator:
    """Searches by one exact key and opens the one account found; returns its page."""
    form = page.locator("#search-form")
    form.locator("#search-key").select_option(key)
    form.locator("#search-value").fill(value)
    form.locator("button[type=submit]").click()
    results = form.locator("#search-results button")
    if key == "username":  # not a result of the search before, still listed until this one's comes
        results = results.filter(has_text=value)
    results.first.click()
    view = page.locator("#account-view")
    expect(view).to_be_visible()
    expect(view).not_to_have_attribute("aria-busy", "true")
    return view


def act(page: Page, button: Locator, reason: str, *, password: str | None = None) -> None:
    """Clicks an action's button and confirms it with `reason` (and, asked, the password)."""
    button.click()
    dialog = page.locator("#action-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#action-reason")).to_be_focused()
    dialog.locator("#action-reason").fill(reason)
    dialog.locator("#action-confirm").click()
    if password is not None:
        expect(dialog.locator("#action-password")).to_be_visible()
        dialog.locator("#action-password").fill(password)
        dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#action-done")).to_be_visible()


def act_setting(page: Page, button: Locator, field: str, choose: Callable[[Locator], object], reason: str) -> None:
    """Clicks the button of an action whose dialog asks a value first: `field` has the focus, `choose`
    sets it, and `reason` confirms it."""
    button.click()
    dialog = page.locator("#action-dialog")
    expect(dialog.locator(field)).to_be_focused()
    choose(dialog.locator(field))
    dialog.locator("#action-reason").fill(reason)
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()


def action(view: Locator, name: str) -> Locator:
    return view.locator(f"#account-actions button[data-action={name}]")


def audit_row(view: Locator, reason: str) -> Locator:
    return view.locator("#audit-rows tr", has=view.page.locator("td", has_text=reason))


def test_support_unlocks_a_person_locked_out_then_locks_them(make_server, new_device, screenshot):
    url, ctx = make_server()
    support = open_console(operator(new_device, url, ctx, Role.SUPPORT))
    target = register_device(url)
    for _ in range(ctx.settings.login_max_failures):
        with pytest.raises(CityloginError):    # 401, then 429: either refuses
            target.login("wrong password 1")

    view = find(support, target.key_file.username)
    expect(view.locator("#account-name")).to_have_text(target.key_file.username)
    expect(view.locator("#profile")).to_contain_text("Sign-ins paused until")
    expect(view.locator("#profile")).to_contain_text("English")          # the language by its name
    expect(view.locator("#session-rows")).to_have_text("No sessions.")  # an empty list says so
    expect(view.locator("#audit-rows")).to_have_text("No operator has acted on this account yet.")
    expect(action(view, "lock")).to_have_count(0)
    act(support, action(view, "unlock"), "ticket 9: locked out after a holiday")
    expect(support.locator("#action-done")).to_be_focused()            # the result, not <body>
    expect(audit_row(view, "ticket 9: locked out after a holiday")).to_contain_text("Unlock account")
    target.login(PASSWORD)

    act(support, action(view, "lock"), "ticket 10: phone stolen")
    expect(support.locator("#action-done")).to_be_focused()
    expect(view.locator("#profile")).to_contain_text("Yes")
    expect(action(view, "unlock")).to_be_visible()
    row = audit_row(view, "ticket 10: phone stolen")
    expect(row).to_contain_text("Lock account")
    operator_name = support.locator("#operator-name").inner_text()
    expect(row.locator("td[data-column='web.admin.col_operator']")).to_have_text(f"{operator_name} (Support)")
    expect(row.locator("td[data-column='web.admin.col_details']")).to_have_text("Sessions ended: 1")
    assert problem(target.request("GET", "/session/me"))[:2] == (403, "account_locked")
    screenshot(support, "admin_console", full_page=True)


def test_support_ends_a_strangers_sessions_unbinds_a_device_and_sends_mails(make_server, new_device):
    url, ctx = make_server(max_concurrent_devices=3)
    ctx.notifier.backend = recorder = Recorder()
    support = open_console(operator(new_device, url, ctx, Role.SUPPORT))
    target = person(url)
    stranger = add_device(ctx, target, name="Stranger phone")
    stranger.login(PASSWORD)

    view = find(support, stranger.key_file.device_id, key="device_id")
    expect(view.locator("#session-rows tr")).to_have_count(2)
    act(support, action(view, "revoke_sessions"), "ticket 11: a stranger signed in")
    assert problem(target.request("GET", "/session/me"))[:2] == (401, "session_revoked")
    expect(view.locator("#session-rows")).not_to_contain_text("Active")
    expect(audit_row(view, "ticket 11: a stranger signed in")).to_contain_text("End all sessions")

    stranger.login(PASSWORD)                     # back on the phone: its certificate must go
    row = view.locator("#device-rows tr", has_text="Stranger phone")
    act(support, row.get_by_role("button", name="Unbind Stranger phone"), "ticket 11: not their phone")
    expect(row).to_contain_text("Revoked")
    expect(row.locator("button")).to_have_count(0)
    assert problem(stranger.request("GET", "/session/me")) == (401, "session_revoked", "device_unbound")

    act_setting(support, action(view, "limit"), "#action-limit-value", lambda box: box.fill("2"),
                "ticket 12: two phones")
    expect(view.locator("#profile")).to_contain_text("2 (set by an operator)")
    expect(audit_row(view, "ticket 12: two phones")).to_contain_text("Device limit: 2")
    expect(audit_row(view, "ticket 11: not their phone")).to_contain_text("Device: Stranger phone")

    act(support, action(view, "resend_verification"), "ticket 13: the mail got lost")
    act(support, action(view, "password_reset"), "ticket 14: forgot the password")   # at once: two quick actions
    expect(audit_row(view, "ticket 14: forgot the password")).to_contain_text("Send password reset")
    expect(audit_row(view, "ticket 13: the mail got lost")).to_contain_text("Resend verification")
    expect(view.locator("#audit-rows tr")).to_have_count(5)
    expect(view.locator("#account-view > .error")).to_be_hidden()
    settle_background(ctx)
    assert {"verify_email", "password_reset"} <= recorder.events_to(f"{target.key_file.username}@example.com")


def run_until(page: Page, done: Callable[[], bool], what: str) -> None:
    """Lets Playwright deliver its events (the route handlers run then) until `done()`; a minute at most."""
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, f"never came: {what}"
        page.wait_for_timeout(50)


# Each JSON answer the page reads, by address, once the code that awaited it has run: the page's own
# continuations are microtasks of the read, and a timer's task comes only after them.
ANSWERS_READ = """(() => {
  const read = Response.prototype.json;
  window.answersRead = [];
  Response.prototype.json = function json() {
    const reading = read.call(this);
    const url = this.url;
    reading.then(() => setTimeout(() => window.answersRead.push(url)), () => {});
    return reading;
  };
})();"""


def test_an_older_audit_answer_arriving_last_never_replaces_the_newer_one(make_server, new_device):
    """Two actions in a row: the audit trail read after the first is answered by the server at once
    (one row) but handed to the page only once the trail read after the second (two rows) is drawn.
    Arriving last, the older answer leaves the newer list in place."""
    url, ctx = make_server()
    device = operator(new_device, url, ctx, Role.SUPPORT)
    device.page.add_init_script(ANSWERS_READ)
    support = open_console(device)
    target = person(url)
    view = find(support, target.key_file.username)
    audit_reads = re.compile(r"/admin/accounts/[^/?]+/audit\?")
    held: dict = {}

    def hold_the_first(route) -> None:
        if held:
            route.fallback()
            return
        held["route"] = route
        held["answer"] = route.fetch()            # the server's answer now; the page gets it later

    support.route(audit_reads, hold_the_first)
    act(support, action(view, "resend_verification"), "ticket 30: the first action")
    run_until(support, lambda: "answer" in held, "the trail read after the first action")
    assert [item["reason"] for item in held["answer"].json()["items"]] == ["ticket 30: the first action"]

    act(support, action(view, "lock"), "ticket 31: the second action")
    expect(audit_row(view, "ticket 31: the second action")).to_be_visible()
    expect(view.locator("#audit-rows tr")).to_have_count(2)
    reads_so_far = support.evaluate("() => window.answersRead.length")
    held["route"].fulfill(response=held["answer"])
    support.wait_for_function("([url, count]) => window.answersRead.length > count"
                              " && window.answersRead.slice(count).some((read) => new RegExp(url).test(read))",
                              arg=[audit_reads.pattern, reads_so_far], timeout=60_000)
    expect(view.locator("#audit-rows tr")).to_have_count(2)
    expect(audit_row(view, "ticket 31: the second action")).to_be_visible()
    expect(view.locator("#audit-rows")).not_to_have_attribute("aria-busy", "true")


def test_the_language_switch_changes_the_console_only_not_the_operators_mail(make_server, new_device):
    """Issue 65: the header's switch is the page's language, in this browser; the operator's own account (the
    language of the mail it is sent) keeps its language, and a reload keeps the language picked."""
    url, ctx = make_server()
    page = open_console(operator(new_device, url, ctx, Role.SUPPORT))
    user_uuid = users.find_uuid_by_username(ctx, username=page.locator("#operator-name").inner_text())
    patches: list = []
    page.on("request", lambda sent: patches.append(sent.url) if sent.method == "PATCH" else None)
    page.locator("#language-ja").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("#search-form h1")).to_have_text("アカウントを探す")
    page.reload()
    expect(page.locator("#operator-name")).to_be_visible()
    expect(page.locator("#search-form h1")).to_have_text("アカウントを探す")
    page.locator("#language-en").click()
    expect(page.locator("#search-form h1")).to_have_text("Find an account")
    assert patches == []
    assert user_uuid and users.get_user(ctx, user_uuid=user_uuid).locale == "en"


def test_a_reason_is_required_and_an_old_sign_in_asks_for_the_password(make_server, new_device):
    url, ctx = make_server(admin_reauth_seconds=0)
    support = open_console(operator(new_device, url, ctx, Role.SUPPORT))
    target = person(url)
    view = find(support, target.key_file.user_uuid, key="user_uuid")
    dialog = support.locator("#action-dialog")

    action(view, "revoke_sessions").click()
    expect(dialog.locator("#action-password")).to_be_visible()        # asked up front: the window has lapsed
    expect(dialog.locator("#action-reauth-intro")).to_contain_text("confirm with your own password")
    dialog.locator("#action-confirm").click()
    expect(dialog.locator(".error")).to_contain_text("a reason is required")
    dialog.locator("#action-reason").fill("ticket 15")
    dialog.locator("#action-confirm").click()
    expect(dialog.locator("#action-password")).to_be_focused()       # no password typed: asked, not sent
    expect(dialog.locator("#action-passkey")).to_be_visible()
    dialog.locator("#action-password").fill("wrong password 1")
    dialog.locator("#action-confirm").click()
    expect(dialog.locator(".error")).to_have_text("Wrong password: enter your own password again.")
    expect(dialog.locator("#action-password")).to_be_focused()
    assert target.request("GET", "/session/me").status_code == 200    # nothing done
    dialog.locator("#action-password").fill(PASSWORD)
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    expect(support.locator("#action-done")).to_be_focused()
    assert problem(target.request("GET", "/session/me"))[:2] == (401, "session_revoked")

    lock = action(view, "lock")                                       # Escape closes; nothing is done
    lock.focus()
    support.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    support.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(lock).to_be_focused()                                      # back on the button that opened it
    expect(view.locator("#profile")).not_to_contain_text("Yes")


def test_an_admin_grants_a_role_and_registers_an_app(make_server, new_device):
    url, ctx = make_server()
    admin = open_console(operator(new_device, url, ctx, Role.ADMIN))
    target = person(url)
    view = find(admin, f"{target.key_file.username}@example.com".upper(), key="email")
    act_setting(admin, action(view, "roles"), "#action-role-value", lambda box: box.select_option("support"),
                "ticket 16: new support hire")
    expect(view.locator("#profile")).to_contain_text("Support")
    assert set(users.get_user(ctx, user_uuid=target.key_file.user_uuid).roles or ()) == {"support"}
    expect(audit_row(view, "ticket 16: new support hire")).to_contain_text("Granted: Support")

    admin.locator("#console .tabs button[data-tab=apps]").click()
    panel = admin.locator("#apps-panel")
    expect(panel).not_to_have_attribute("aria-busy", "true")
    name = unique_name("app")
    form = panel.locator("#app-form")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Redirect URIs").fill("https://app.example.com/callback\nhttps://app.example.com/other")
    form.get_by_role("button", name="Add app").click()
    dialog = admin.locator("#action-dialog")
    dialog.locator("#action-reason").fill("ticket 17: the library's app")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    secret = panel.locator("#app-secret-value")
    expect(secret).to_have_text(re.compile(r"\S{20,}"))
    row = panel.locator("#app-rows tr", has_text=name)
    expect(row).to_contain_text("https://app.example.com/other")
    expect(row).to_contain_text("PKCE when the app sends it")       # the rule it signs in under (SPEC §14)
    first_secret = secret.inner_text()
    assert first_secret not in panel.locator("#app-rows").inner_text()     # shown once, never listed

    act_on_app(admin, row, "Rotate secret", "ticket 18: the secret leaked")
    expect(secret).not_to_have_text(first_secret)
    expect(panel.locator("#app-secret")).to_be_focused()             # the result of the action
    act_on_app(admin, row, "Remove", "ticket 19: the app is gone")
    expect(row).to_have_count(0)
    expect(panel.locator("#apps-done")).to_be_focused()
    expect(panel.locator("#apps-done")).to_have_text(f"Done: Remove ({name}).")

    strict = unique_name("app")
    form.get_by_label("Name").fill(strict)
    form.get_by_label("Redirect URIs").fill("https://app.example.com/callback")
    form.get_by_label("Require PKCE of every sign-in").check()
    form.get_by_role("button", name="Add app").click()
    dialog.locator("#action-reason").fill("ticket 20: its library sends PKCE")
    dialog.locator("#action-confirm").click()
    expect(panel.locator("#app-rows tr", has_text=strict)).to_contain_text("PKCE required (this app)")

    screen = unique_name("tv")     # a device-flow app (issue 63): no redirect URI, its screens' class
    form.get_by_label("Name").fill(screen)
    expect(form.get_by_label("Its screens count as")).to_be_hidden()
    form.get_by_label("Devices without a browser (device flow)").check()
    expect(form.get_by_label("Its screens count as")).to_have_value("tv")
    form.get_by_label("Its screens count as").select_option("desktop")
    form.get_by_role("button", name="Add app").click()
    dialog.locator("#action-reason").fill("ticket 21: the library's TV app")
    dialog.locator("#action-confirm").click()
    screen_row = panel.locator("#app-rows tr", has_text=screen)
    expect(screen_row).to_contain_text("device flow (Computer)")
    expect(screen_row).not_to_contain_text("PKCE")                   # it signs nobody in through a browser
    expect(form.get_by_label("Its screens count as")).to_be_hidden()  # the form is reset for the next app
    [added] = [app for app in apps.list_apps(ctx) if app.name == screen]
    assert (added.oidc().device_flow, added.oidc().device_class, added.oidc().redirect_uris,
            added.oidc().consent) == (True, "desktop", (), False)


def test_an_admin_adds_a_fapi2_app_with_its_keys_and_one_that_cannot_comply_is_refused(make_server, new_device):
    """The app form's public keys, ID token algorithm and "FAPI 2.0 Security Profile": an app that can comply
    is listed with the profile and the PKCE rule it brings; without keys the dialog shows the server's
    reason, naming the field, and nothing is added; a JWK Set that is no JSON object is caught at its field."""
    url, ctx = make_server()
    admin = open_console(operator(new_device, url, ctx, Role.ADMIN))
    admin.locator("#console .tabs button[data-tab=apps]").click()
    panel = admin.locator("#apps-panel")
    expect(panel).not_to_have_attribute("aria-busy", "true")
    form, dialog = panel.locator("#app-form"), admin.locator("#action-dialog")
    key = ECKey.generate_key("P-256", parameters={"kid": "bank-1"})

    keyless = unique_name("bank")
    form.get_by_label("Name").fill(keyless)
    form.get_by_label("Redirect URIs").fill("https://bank.example/cb")
    form.get_by_label("ID token algorithm").select_option("ES256")
    form.get_by_label("FAPI 2.0 Security Profile").check()
    form.get_by_role("button", name="Add app").click()
    dialog.locator("#action-reason").fill("ticket 30: the bank's app")
    dialog.locator("#action-confirm").click()
    expect(dialog.locator(".error")).to_contain_text("jwks:")
    dialog.get_by_role("button", name="Cancel").click()
    assert not [app for app in apps.list_apps(ctx) if app.name == keyless]

    form.get_by_label("Public keys (JWK Set)").fill("[not json")
    form.get_by_role("button", name="Add app").click()
    expect(form.get_by_label("Public keys (JWK Set)")).to_be_focused()
    expect(panel.locator("#app-jwks-error")).to_be_visible()
    expect(dialog).to_be_hidden()

    bank = unique_name("bank")
    form.get_by_label("Name").fill(bank)
    form.get_by_label("Public keys (JWK Set)").fill(json.dumps({"keys": [key.as_dict(private=False)]}))
    form.get_by_role("button", name="Add app").click()
    dialog.locator("#action-reason").fill("ticket 31: the bank's app, with its key")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    row = panel.locator("#app-rows tr", has_text=bank)
    expect(row).to_contain_text("FAPI 2.0")
    expect(row).to_contain_text("PKCE required (FAPI 2.0)")
    [added] = [app for app in apps.list_apps(ctx) if app.name == bank]
    oidc = added.oidc()
    assert (oidc.profile, oidc.id_token_alg, oidc.token_endpoint_auth_method()) == ("fapi2", "ES256", "private_key_jwt")
    expect(form.get_by_label("FAPI 2.0 Security Profile")).not_to_be_checked()    # reset for the next app


def test_an_admin_adds_an_app_that_signs_its_requests(make_server, new_device):
    """The app form's request-object fields: signed only, one algorithm, a request_uri; without keys the
    dialog shows the server's reason and nothing is added; with them the row says "signed requests only"."""
    url, ctx = make_server()
    admin = open_console(operator(new_device, url, ctx, Role.ADMIN))
    admin.locator("#console .tabs button[data-tab=apps]").click()
    panel = admin.locator("#apps-panel")
    expect(panel).not_to_have_attribute("aria-busy", "true")
    form, dialog = panel.locator("#app-form"), admin.locator("#action-dialog")
    signer = unique_name("signer")
    form.get_by_label("Name").fill(signer)
    form.get_by_label("Redirect URIs").fill("https://signer.example/cb")
    form.get_by_label("Request URIs (request objects by reference)").fill("https://signer.example/requests/1")
    form.get_by_label("Its request objects are signed with").select_option("ES256")
    form.get_by_label("Take its sign-in requests only as signed request objects").check()
    form.get_by_role("button", name="Add app").click()
    dialog.locator("#action-reason").fill("ticket 32: the signer")
    dialog.locator("#action-confirm").click()
    expect(dialog.locator(".error")).to_contain_text("register jwks")
    dialog.get_by_role("button", name="Cancel").click()
    assert not [app for app in apps.list_apps(ctx) if app.name == signer]

    key = ECKey.generate_key("P-256", parameters={"kid": "signer-1"})
    form.get_by_label("Public keys (JWK Set)").fill(json.dumps({"keys": [key.as_dict(private=False)]}))
    form.get_by_role("button", name="Add app").click()
    dialog.locator("#action-reason").fill("ticket 33: the signer, with its key")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    expect(panel.locator("#app-rows tr", has_text=signer)).to_contain_text("signed requests only")
    [added] = [app for app in apps.list_apps(ctx) if app.name == signer]
    oidc = added.oidc()
    assert (oidc.require_signed_request_object, oidc.request_object_signing_alg, oidc.request_uris) == \
        (True, "ES256", ("https://signer.example/requests/1",))


def act_on_app(page: Page, row: Locator, button: str, reason: str) -> None:
    row.get_by_role("button", name=button).click()
    dialog = page.locator("#action-dialog")
    dialog.locator("#action-reason").fill(reason)
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()


def test_a_viewer_reads_but_sees_no_action_and_the_api_refuses_one(make_server, new_device):
    url, ctx = make_server()
    nobody = new_device(url)
    nobody.page.goto(f"{url}/admin/")
    expect(nobody.page.locator("#signed-out")).to_be_visible()
    expect(nobody.page.locator("footer #console-version")).to_have_text(f"Version {running_version()}")
    expect(nobody.page.locator("#signed-out a[href='/']")).to_be_visible()

    viewer = operator(new_device, url, ctx, Role.VIEWER)
    viewer.open_account()
    viewer.page.get_by_role("link", name="Operator console").click()
    expect(viewer.page.locator("#console")).to_be_visible()
    target = person(url)
    view = find(viewer.page, target.key_file.username)
    expect(view.locator("#device-rows tr")).to_have_count(1)
    expect(view.locator("#history-rows tr").first).to_be_visible()
    expect(viewer.page.locator("button[data-action]")).to_have_count(0)
    expect(viewer.page.locator("#console .tabs button[data-tab=apps]")).to_be_hidden()
    refused = viewer.page.evaluate("""async (uuid) => {
        const { authCall } = await import("/web/api.js");
        try {
          await authCall("POST", `/admin/accounts/${uuid}/lock`, { reason: "not mine to do" });
          return null;
        } catch (error) {
          return [error.status, error.code, error.sessionEnded];
        }
    }""", target.key_file.user_uuid)
    assert refused == [403, "forbidden", False]
    assert target.request("GET", "/session/me").status_code == 200

    plain = operator(new_device, url, ctx, None)
    plain.open_account()
    expect(plain.page.get_by_role("link", name="Operator console")).to_be_hidden()
    plain.page.goto(f"{url}/admin/")
    expect(plain.page.locator("#no-role")).to_be_visible()


@pytest.fixture
def faults(dynamodb_endpoint):
    with DynamoFaults(dynamodb_endpoint) as proxy:
        yield proxy


def press(page: Page, target: Locator, key: str = "Enter") -> None:
    """By keyboard: focus `target`, then press `key`."""
    target.focus()
    page.keyboard.press(key)


def test_the_console_speaks_japanese_by_keyboard_and_says_what_a_failing_database_left_undone(
        make_server, new_device, faults):
    url, ctx = make_server(dynamodb_endpoint_url=faults.url)   # its DynamoDB fails when the test says
    device = operator(new_device, url, ctx, Role.SUPPORT)
    page = open_console(device)
    operator_name = page.locator("#operator-name").inner_text()
    age_sign_in(ctx, operator_name, 600)                       # signed in 10 minutes ago: the window lapsed
    page.reload()
    expect(page.locator("#console")).to_be_visible()
    press(page, page.locator("#language-ja"))
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("#search-form h1")).to_have_text("アカウントを探す")
    expect(page.locator("#search-form button[type=submit]")).to_have_text("検索")
    expect(page.locator("#operator-text")).to_contain_text("サポート")
    expect(page.locator("footer #console-version")).to_have_text(f"バージョン {running_version()}")
    target = person(url)
    page.locator("#search-value").fill(target.key_file.username)
    press(page, page.locator("#search-value"))
    press(page, page.locator("#search-results button").first)
    view = page.locator("#account-view")
    expect(view.locator("#account-name")).to_be_focused()
    expect(view).not_to_have_attribute("aria-busy", "true")
    expect(action(view, "lock")).to_have_text("アカウントをロック")
    expect(view.locator("h2").first).to_have_text("デバイス")
    expect(view.locator("#profile")).to_contain_text("英語")
    expect(view.locator("#audit-rows")).to_have_text("このアカウントに対するオペレーターの操作はまだありません。")

    dialog = page.locator("#action-dialog")
    press(page, action(view, "lock"))                          # asked up front, before any submit
    expect(dialog.locator("#action-reason")).to_be_focused()
    expect(dialog.locator("#action-password")).to_be_visible()
    expect(dialog.locator("#action-reauth-intro")).to_contain_text("5 分")
    page.keyboard.type("チケット 20: 端末の盗難")
    press(page, dialog.locator("#action-password"))             # Enter in the field submits
    expect(dialog.locator("#action-password")).to_be_focused()
    page.keyboard.type("wrong password 1")
    page.keyboard.press("Enter")
    expect(dialog.locator(".error")).to_have_text("パスワードが違います。ご自身のパスワードをもう一度入力してください。")
    expect(dialog.locator("#action-password")).to_be_focused()
    assert target.request("GET", "/session/me").status_code == 200            # nothing done
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    done = page.locator("#action-done")
    expect(done).to_be_focused()
    expect(done).to_have_text(f"完了しました: アカウントをロック ({target.key_file.username})。")
    row = audit_row(view, "チケット 20: 端末の盗難")
    expect(row.locator("td[data-column='web.admin.col_operator']")).to_have_text(f"{operator_name}（サポート）")
    expect(row.locator("td[data-column='web.admin.col_details']")).to_have_text("終了したセッション: 1 件")

    press(page, action(view, "password_reset"))                # the password renewed the window: not asked
    expect(dialog.locator("#action-password")).to_be_hidden()
    page.keyboard.type("チケット 21: パスワード忘れ")
    press(page, dialog.locator("#action-confirm"))
    expect(dialog).to_be_hidden()
    expect(done).to_be_focused()
    press(page, page.locator("#language-en"))                  # the result line follows the language
    expect(done).to_have_text(f"Done: Send password reset ({target.key_file.username}).")
    press(page, page.locator("#language-ja"))
    expect(done).to_have_text(f"完了しました: パスワード再設定を送信 ({target.key_file.username})。")
    expect(view.locator("#audit-rows tr")).to_have_count(2)      # both actions, drawn again in Japanese

    faults.fail(Shape.INTERNAL_SERVER_ERROR, operations={"UpdateItem", "PutItem", "TransactWriteItems"})
    press(page, action(view, "unlock"))
    page.keyboard.type("チケット 22: 盗難届の取り下げ")
    press(page, dialog.locator("#action-confirm"))
    expect(dialog.locator(".error")).to_have_text("データベースが応答しません。少し待ってからもう一度お試しください。")
    expect(dialog.locator("#action-confirm")).to_be_focused()  # to try again
    faults.clear()
    assert users.get_user(ctx, user_uuid=target.key_file.user_uuid).locked          # nothing done
    expect(view.locator("#audit-rows tr")).to_have_count(2)
    page.keyboard.press("Escape")                               # given up: the page is read again
    expect(dialog).to_be_hidden()
    expect(action(view, "unlock")).to_be_focused()
    page.keyboard.press("Enter")                                # and tried again later
    page.keyboard.type("チケット 22: 盗難届の取り下げ")
    press(page, dialog.locator("#action-confirm"))
    expect(dialog).to_be_hidden()
    expect(done).to_be_focused()
    expect(view.locator("#audit-rows tr")).to_have_count(3)
    assert not users.get_user(ctx, user_uuid=target.key_file.user_uuid).locked
    page.reload()                                  # the account keeps the language
    expect(page.locator("#search-form h1")).to_have_text("アカウントを探す")
