"""What the web UI costs the network, counted in Chromium: a cold load of the login screen moves at
most COLD_BUDGET bytes (compressed assets), and an ordinary reload asks the server for the page alone
(its fingerprinted assets are cached as immutable) besides the API's answers it reads each time.
Counts of bytes and requests, never timings."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from playwright.sync_api import expect

from citylogin.app import create_app
from tests.browser.conftest import DESKTOP
from tests.browser.pages import DevicePage
from tests.support.live import serving

# 44.9 kB before the login screen told every refusal in its own words and fitted a phone in both
# languages (the catalogue +1.4 kB, the stylesheet +0.9 kB, the resume and ending code +1.2 kB): 48.5 kB.
# 50.6 kB with the TV approval page's texts in the catalogue and the session list's class badges (+0.6 kB)
# and the session-ending banners as a module of their own (endings.js, +0.7 kB: app.js stays under 500
# lines); the page's own code (device_flow.js) is loaded at /device alone.
# 52.9 kB with the header's language question (languages.js, +0.5 kB), the "mail is delayed" and "See my data"
# texts in the catalogue and the readable copy's page in index.html (the copy's own code, data_export.js, and
# its texts come only when asked for).
# 54.4 kB with the in-use dialog's texts (which device goes, what this device is) and the plural forms in the
# catalogue; the dialog's own code (in_use.js) comes only when the account is at its limit.
# 56.1 kB with the accounts from elsewhere (SPEC §16): the login screen asks which providers the service offers
# (GET /federation/providers, +0.8 kB with its headers), the SDK's ticket sign-in and the federation texts in the
# catalogue (+0.7 kB); the buttons' and the steps' own code (federation*.js, identities.js) comes only when there
# are providers, a provider's answer or the Account panel.
# 57.1 kB with the first device of an imported account (SPEC §17): the login form's "First time on citylogin?" link,
# its texts in the catalogue and the SDK's enrolWithCode/enrolWithTicket (+0.4 kB); its panel's code (enrol.js) comes
# only when the link is followed.
COLD_BUDGET = 57_500
# What the login screen asks the API on every load, not an asset: the providers it offers change when operators
# change them.
API_READS = {"/federation/providers"}


class CountingApp:
    """WSGI middleware that notes the path of every request the server is asked."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.paths, self._lock = app, [], threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self.paths.append(environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)

    def take(self) -> list[str]:
        with self._lock:
            taken, self.paths = self.paths, []
        return taken


@contextmanager
def counted_server(base_config: dict[str, Any]) -> Iterator[tuple[str, CountingApp]]:
    app = create_app(base_config)
    counter = CountingApp(app.wsgi_app)
    app.wsgi_app = counter  # type: ignore[method-assign]
    with serving(app) as url:
        yield url, counter


def wire_bytes(cdp) -> dict[str, int]:
    """{URL: bytes on the wire, response headers included} of every request that finished loading."""
    urls: dict[str, str] = {}
    finished: dict[str, int] = {}
    cdp.on("Network.requestWillBeSent", lambda event: urls.__setitem__(event["requestId"], event["request"]["url"]))
    cdp.on("Network.loadingFinished", lambda event: finished.__setitem__(urls[event["requestId"]],
                                                                         int(event["encodedDataLength"])))
    cdp.send("Network.enable")
    return finished


def open_login_screen(device: DevicePage) -> None:
    """The login screen, translated: every module ran and the catalogue arrived."""
    expect(device.page.locator("#auth-screen")).to_be_visible()
    expect(device.login_form.locator("h1")).to_have_text("Log in")


def test_a_cold_load_is_small_and_a_reload_asks_for_the_page_alone(base_config, browser, new_device):
    with counted_server(base_config) as (url, counter):
        device = new_device(url, viewport=DESKTOP, locale="en-US")
        finished = wire_bytes(device.page.context.new_cdp_session(device.page))
        device.page.goto(f"{url}/", wait_until="networkidle")
        open_login_screen(device)
        cold_paths = counter.take()
        cold = sum(finished.values())
        assert len(finished) == len(cold_paths), (finished, cold_paths)
        assert cold <= COLD_BUDGET, (cold, finished)

        device.page.reload(wait_until="networkidle")
        open_login_screen(device)
        assert [path for path in counter.take() if path not in API_READS] == ["/"]
