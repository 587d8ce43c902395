"""examples/notes as the tests run it: citylogin's apps added through its CLI, and the notes app in
its own process (`python examples/notes/notes_app.py`) with NOTES_* settings."""
from __future__ import annotations

import copy
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.client.api import Client
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.services import running_process

REPOSITORY = Path(__file__).resolve().parents[2]
NOTES_APP = REPOSITORY / "examples" / "notes" / "notes_app.py"


def add_app(env: dict[str, str], name: str, *, push_url: str | None = None, redirect_uris: tuple[str, ...] = (),
            options: tuple[str, ...] = ()) -> dict[str, str]:
    """`citylogin apps add NAME [--push-url URL] [--redirect-uri URI ...] [options] --json`:
    {"client_id", "client_secret", "name", "push_url", ...}."""
    args = ["apps", "add", name, "--json", *(["--push-url", push_url] if push_url else []),
            *[arg for uri in redirect_uris for arg in ("--redirect-uri", uri)], *options]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@contextmanager
def running_notes(citylogin_url: str, protection: str, *, port: int | None = None,
                  credentials: dict[str, str] | None = None) -> Iterator[str]:
    """The notes app with `protection` (guard | forward-auth | push) on 127.0.0.1:`port`; yields its URL."""
    port = port or free_port()
    # the guard's wait for citylogin: a busy machine answers late now and then, and past 0.5 s that is a 503
    env = {"NOTES_CITYLOGIN_URL": citylogin_url, "NOTES_PROTECTION": protection, "NOTES_CALL_TIMEOUT": "10"}
    if credentials:
        env |= {"NOTES_CLIENT_ID": credentials["client_id"], "NOTES_CLIENT_SECRET": credentials["client_secret"]}
    with running_process([sys.executable, str(NOTES_APP), "--port", str(port)], port=port, env=env,
                         cwd=REPOSITORY) as url:
        yield url


def notes_api(url: str, caller: Client | str | None, method: str = "GET", path: str = "/api/notes",
              **kwargs) -> requests.Response:
    """One API request: as `caller` (a Client: its token, with a fresh DPoP proof when bound; a
    client copied earlier keeps the token it had then), or with a raw Bearer string, or with none."""
    if isinstance(caller, Client):
        headers = caller.auth_headers(method, url + path)
    else:
        headers = {"Authorization": f"Bearer {caller}"} if caller else {}
    # Longer than the app's own wait for citylogin (NOTES_CALL_TIMEOUT, 10 s above): a citylogin that
    # accepts and does not answer (one stopping) costs the app that wait, then its 503.
    return requests.request(method, url + path, headers=headers, timeout=30, **kwargs)


def as_of_now(client: Client) -> Client:
    """`client` as it is now (its current token, its key), for requests after it moved on."""
    return copy.copy(client)


def second_device(first: Client) -> Client:
    """A further device of `first`'s account, paired with the QR payload `first` shows; not logged in."""
    other = Client(first.base_url)
    other.pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD)
    return other


def first_refusal(url: str, token: Client | str, *, within: float) -> requests.Response:
    """The app's first answer to `token` that is not a 200, asking again every 20 ms for up to
    `within` seconds; the last answer if all were 200."""
    deadline = time.monotonic() + within
    while True:
        response = notes_api(url, token)
        if response.status_code != 200 or time.monotonic() >= deadline:
            return response
        time.sleep(0.02)
