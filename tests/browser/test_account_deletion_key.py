"""Deleting the account in the web UI (issue 16 item 24): the login screen shows only once this
browser's key for the account is gone from IndexedDB, even when the event stream's news of the
deletion arrives before DELETE /account's own answer, and even when the Account panel's own
GET /account has not answered yet (a slow server)."""
from __future__ import annotations

from playwright.sync_api import Route, expect

from tests.conftest import unique_name
from tests.support.live import PASSWORD
from tests.support.waiting import wait_until

STORED_KEYS = """async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("citylogin", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("devices", { keyPath: "account" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  try {
    return await new Promise((resolve, reject) => {
      const request = db.transaction("devices").objectStore("devices").getAll();
      request.onsuccess = () => resolve(request.result.map((record) => record.username));
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}"""


def test_the_login_screen_shows_only_once_the_deleted_accounts_key_is_gone(make_server, new_device):
    url, _ = make_server(events_poll_interval=0.2)
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    assert a.page.evaluate(STORED_KEYS) == [user]
    held: list = []

    def hold_deletion_answer(route: Route) -> None:
        # The server deletes the account now; its answer reaches the page only when the test lets it.
        if route.request.method == "DELETE":
            held.append((route, route.fetch()))
        else:
            route.continue_()

    a.page.route("**/account", hold_deletion_answer)
    account = a.open_account()
    form = account.locator("#delete-form")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("I understand").check()
    form.get_by_role("button", name="Delete my account").click()

    a.expect_login_screen()                          # from the event stream: session_revoked, account_deleted
    assert a.page.evaluate(STORED_KEYS) == []
    # The handler holds the answer once its route.fetch() returns, which may be after the page heard
    # of the deletion from the stream; Playwright runs the handler while the test waits on the page.
    wait_until(lambda: held or a.page.wait_for_timeout(50), what="DELETE's answer is held")
    assert held and held[0][1].status == 204         # DELETE's answer has not reached the page yet
    route, response = held[0]
    route.fulfill(response=response)
    expect(a.banner).to_contain_text("deleted")
    a.expect_login_screen()
    assert a.page.evaluate(STORED_KEYS) == []


def test_the_key_is_forgotten_when_the_account_panel_has_not_loaded_yet(make_server, new_device):
    url, _ = make_server()
    a = new_device(url).open()
    # A slow server: neither the event stream nor the Account panel's GET /account answers, so only
    # DELETE's own answer tells the page, which must know the account without the panel's data.
    waiting: list[Route] = []
    a.page.route("**/session/events*", lambda route: waiting.append(route))
    a.page.route("**/account", lambda route: waiting.append(route) if route.request.method == "GET"
                 else route.continue_())
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.go("account")
    form = a.page.locator("#delete-form")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("I understand").check()
    form.get_by_role("button", name="Delete my account").click()

    expect(a.banner).to_contain_text("deleted")      # DELETE's answer
    a.expect_login_screen()
    assert a.page.locator("#account-username").inner_text() == "—"  # the panel never loaded
    assert a.page.evaluate(STORED_KEYS) == []
