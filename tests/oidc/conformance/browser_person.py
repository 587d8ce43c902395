"""The suite's browser and its test user, played in real Chromium through citylogin's own web UI: every
authorization and end-session request is a navigation of the browser, and the person does at the pages
what the suite's tester does (signs in, allows an app, confirms a re-login or a logout). The app's side of
the redirects is a real HTTP server (`CallbackReceiver`) that records what the browser brought it: a GET's
query, or a form_post's POST body. The pages the suite asks its tester to screenshot are saved under
tests/screenshots/conformance-*.png (git-ignored)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.browser.pages import DevicePage
from tests.support.live import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
CALLBACK_PATH = "/callback"
POST_LOGOUT_PATH = "/post_logout_redirect"
PERSON_TIMEOUT = 60.0   # seconds: one authorization's pages, the person's steps and the way back (none timed)


@dataclass(frozen=True)
class Callback:
    """One request the browser brought to the app's server."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    form: dict[str, list[str]]

    def params(self) -> dict[str, list[str]]:
        """The authorization response: the POST's form for form_post, else the query."""
        return self.form if self.method == "POST" else self.query


class CallbackReceiver:
    """The app's redirect and post-logout endpoints on a real socket: each GET or POST is recorded and
    answered with a plain page."""

    def __init__(self) -> None:
        self.calls: list[Callback] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self, body: bytes) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/favicon.ico":      # the browser's own request, not the OP's redirect
                    self.send_error(404)
                    return
                content_type = self.headers.get("Content-Type", "")
                form = parse_qs(body.decode("latin-1"), keep_blank_values=True) if body else {}
                with receiver._lock:
                    receiver.calls.append(Callback(self.command, parts.path, parse_qs(parts.query,
                                                   keep_blank_values=True), content_type, form))
                page = b"<!doctype html><title>RP</title><link rel=icon href='data:,'><p>The app has the browser.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self._record(b"")

            def do_POST(self) -> None:  # noqa: N802
                self._record(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "CallbackReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self) -> int:
        with self._lock:
            return len(self.calls)

    def since(self, count: int) -> list[Callback]:
        with self._lock:
            return self.calls[count:]


@dataclass
class Visit:
    """What one navigation led to: the request the app's server got (None: the browser stayed at
    citylogin), and which of the person's steps the pages asked for."""

    callback: Callback | None
    steps: list[str] = field(default_factory=list)
    status: int | None = None      # the HTTP status of the first page the browser was sent to


class Person:
    """The suite's test user in their browser: a device of their own account registered in this browser
    through the web UI (`register`), which holds the citylogin session the suite's "logged in" means."""

    def __init__(self, browser: Browser, op_url: str, receiver: CallbackReceiver, username: str) -> None:
        self.op_url, self.receiver, self.username = op_url, receiver, username
        self.context = browser.new_context(viewport={"width": 1100, "height": 760})
        self._confirm_logout, self._declines, self._declined = True, False, False
        self.device = DevicePage(self.context.new_page(), op_url)

    @property
    def page(self) -> Page:
        return self.device.page

    def register(self) -> None:
        self.device.open()
        self.device.register(self.username, device_name="Conformance browser")

    def close(self) -> list[str]:
        """Closes the browser; the page errors and Content-Security-Policy violations it saw."""
        self.context.close()
        return self.device.errors

    # --- navigations ---------------------------------------------------------------------------

    def go(self, url: str, *, method: str = "GET", params: list[tuple[str, str]] | None = None,
           until: str = "app", confirm_logout: bool = True, declines: bool = False,
           timeout: float = PERSON_TIMEOUT) -> Visit:
        """The browser sent to `url` (a POST: a form the browser submits, as the suite's POST module
        does), and the person through whatever pages follow until `until`: "app", the browser is back
        at the app; "error-page", it stays on a citylogin document that is not the web app; "citylogin",
        it stays on the web app, which asks nothing more (a logout that goes nowhere); "stays", either;
        "login-page", the sign-in page shows the app's request and the person does nothing there. Asked
        whether to sign out of citylogin, the person answers `confirm_logout`; shown the sign-in page for
        an app, the person signs in, or cancels when `declines` (the app hears access_denied)."""
        self._confirm_logout, self._declines, self._declined = confirm_logout, declines, False
        before = self.receiver.count()
        status: int | None = None
        if method == "POST":
            self._post_form(url, params or [])
        else:
            answer = self.page.goto(url)
            status = answer.status if answer is not None else None
        visit = self._through_pages(before, until, timeout)
        visit.status = visit.status or status
        return visit

    def follow(self, *, until: str = "app", timeout: float = PERSON_TIMEOUT) -> Visit:
        """The person goes on from the page the browser shows (which a test looked at first) until
        `until`, as after `go`'s navigation."""
        return self._through_pages(self.receiver.count(), until, timeout)

    def _post_form(self, url: str, params: list[tuple[str, str]]) -> None:
        self.page.goto("about:blank")
        self.page.evaluate("""([action, pairs]) => {
            const form = document.createElement("form");
            form.method = "POST";
            form.action = action;
            for (const [name, value] of pairs) {
              const input = document.createElement("input");
              input.type = "hidden"; input.name = name; input.value = value;
              form.append(input);
            }
            document.body.append(form);
            form.submit();
        }""", [url, params])

    def _through_pages(self, before: int, until: str, timeout: float) -> Visit:
        visit = Visit(callback=None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            arrived = self.receiver.since(before)
            if arrived:
                assert len(arrived) == 1, arrived             # the browser went back to the app once
                visit.callback = arrived[0]
                # the app's page loaded, so that the next navigation is not cut short by this one
                self.page.wait_for_url(lambda url: url.startswith(self.receiver.url), wait_until="load")
                return visit
            try:
                if until == "login-page":          # the person does nothing until the sign-in page shows
                    if self._login_page_shown():
                        return visit
                elif (step := self._answer_page()) is not None:
                    visit.steps.append(step)
                elif until != "app" and self._settled(until) and not self.receiver.since(before):
                    return visit
            except PlaywrightError:        # a navigation under way: the page is read again
                pass
            time.sleep(0.05)
        raise AssertionError(f"the browser did not reach {until} in {timeout} s: {self.page.url} after {visit.steps}")

    def _answer_page(self) -> str | None:
        """One step of the person's at the page shown, if it asks for one: its name."""
        page = self.page
        if page.locator("#consent-dialog[open]").count():
            page.locator("#consent-allow").click()
            return "consent"
        if page.locator("#relogin-dialog[open]").count():
            page.locator("#relogin-dialog button[value=continue]").click()
            return "relogin"
        if page.locator("#confirm-dialog[open]").count():
            if self._confirm_logout:
                page.locator("#confirm-ok").click()
                return "logout-confirmed"
            page.locator("#confirm-dialog button[value=cancel]").click()
            return "logout-declined"
        if self._login_page_shown():               # read once: one answer, signing in or declining
            if self._declines:
                if self._declined:  # declined already: the page is still up while its navigation starts
                    return None
                self._declined = True
                page.locator("#oidc-cancel").click()
                return "declined"
            self.device.log_in(self.username, PASSWORD)
            return "login"
        return None

    def _login_page_shown(self) -> bool:
        """The sign-in page, ready, with the banner of the app that waits."""
        page = self.page
        return bool(page.locator("#oidc-banner:visible").count() and page.locator("#login-form:visible").count()
                    and page.locator("#login-form button[type=submit]:enabled").count())

    def _settled(self, until: str) -> bool:
        """The browser stays at citylogin: on a document that is not the web app (an error page), or on
        the web app showing a screen that neither waits for the person nor leaves for an app."""
        page = self.page
        # The address, the document and its state read at once: read one by one, a navigation to the app
        # between them would pass the app's loaded page for a citylogin error page.
        url, web_app, ready = page.evaluate(
            "() => [location.href, document.querySelector('#auth-screen') !== null, document.readyState]")
        if not url.startswith(self.op_url + "/"):
            return False
        if until in ("error-page", "stays") and not web_app:
            return bool(ready == "complete")
        if until == "error-page":
            return False
        if not web_app or page.locator("dialog[open], #oidc-leaving:visible, #oidc-banner:visible").count():
            return False
        return page.locator("#auth-screen:visible, #home-screen:visible").count() > 0

    def screenshot(self, name: str) -> Path:
        """The page, saved as the suite asks its tester to upload it."""
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"conformance-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def signed_in_at_citylogin(self) -> None:
        """The person's session at citylogin is live in this browser: its signed-in screen shows."""
        self.page.goto(self.op_url + "/")
        self.device.expect_devices_screen()

    def signs_out_of_citylogin(self) -> None:
        """The person logs out at citylogin's own page (the device and its key stay in this browser). The
        page shows neither screen while it starts: which one it shows is read once one does."""
        self.page.goto(self.op_url + "/")
        home = self.page.locator("#home-screen")
        expect(self.page.locator("#home-screen:visible, #login-form:visible").first).to_be_visible()
        if not home.is_visible():
            self.device.expect_login_screen()
            return
        self.device.expect_devices_screen()
        self.device.log_out()

    def expect_no_login_page(self) -> None:
        expect(self.page.locator("#login-form")).to_be_hidden()
