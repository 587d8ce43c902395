"""A native app (RFC 8252) in its own process (tests/interop/native_app.py, Authlib's OAuth2 client as a
public client, unmodified): PKCE S256, a loopback redirect on the port its OS gave it, registered once as
http://127.0.0.1/callback; it reads userinfo and renews with its rotating refresh token. Ends with the
device displaced by another device's login: its renewal is invalid_grant and its userinfo call 401. A
native app has no back-channel endpoint: its next call is where it learns."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.live import PASSWORD, register_device
from tests.support.notes import second_device
from tests.support.oidc import finish_as_device, sign_in_page_request

NATIVE_APP = Path(__file__).resolve().parents[1] / "interop" / "native_app.py"


class NativeApp:
    """The app's process; each of its answers is one JSON line."""

    def __init__(self, issuer: str, client_id: str) -> None:
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        self.process = subprocess.Popen([sys.executable, str(NATIVE_APP), issuer, client_id], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line)

    def answer(self) -> dict:
        line = self.lines.get(timeout=30)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"the native app said: {line}{''.join(self.lines.queue)}") from None

    def tell(self, command: str) -> None:
        self.process.stdin.write(command + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def test_a_native_app_signs_in_by_loopback_renews_and_learns_of_the_displacement(provider):
    url, ctx = provider
    client_id = apps.add_app(ctx, name="Desktop app", push_url=None, oidc=OidcClient(
        redirect_uris=("http://127.0.0.1/callback",), public=True)).app.client_id
    device = register_device(url)
    device.login(PASSWORD)
    app = NativeApp(url, client_id)
    try:
        opened = app.answer()["authorization_url"]                  # the app opens the system browser
        back = finish_as_device(device, sign_in_page_request(opened, browser=device))  # signed in there, on this device
        assert back.startswith("http://127.0.0.1:") and "/callback?" in back
        assert requests.get(back, timeout=10).status_code == 200    # the browser lands at the app's listener
        signed_in = app.answer()
        assert signed_in["signed_in"] and signed_in["has_refresh_token"]
        assert signed_in["userinfo"]["sub"] == device.key_file.user_uuid
        assert f"127.0.0.1:{signed_in['port']}/callback" in back     # the port its OS chose, not a registered one

        app.tell("renew")
        assert app.answer() == {"renewed": True, "userinfo_status": 200}

        second_device(device).login(PASSWORD, force=True)           # the account allows one device at a time
        app.tell("renew")
        assert app.answer() == {"renewed": False, "error": "invalid_grant"}
        assert app.answer() == {"userinfo_status": 401}
    finally:
        app.close()
