"""Deleting the account in the web UI (issue 16 item 24): the login screen shows only once this
browser's key for the account is gone from IndexedDB, even when the event stream's news of the
deletion arrives before DELETE /account's own answer."""
from __future__ import annotations

from playwright.sync_api import Route, expect

from tests.conftest import unique_name
from tests.support.live import PASSWORD

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
    assert held and held[0][1].status == 204         # DELETE's answer has not reached the page yet
    route, response = held[0]
    route.fulfill(response=response)
    expect(a.banner).to_contain_text("deleted")
    a.expect_login_screen()
    assert a.page.evaluate(STORED_KEYS) == []
