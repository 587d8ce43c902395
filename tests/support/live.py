"""A real HTTP server around an app built by a factory, in this process, and device helpers.

In-process serving lets a test reach the app's context (clock, DynamoDB client) while the
requests still cross real sockets and real server threads."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from werkzeug.serving import make_server

import requests

from citylogin.client import Client, KeyFile, generate_key, private_key_pem, public_key_pem, sign_challenge
from common.context import AppContext
from devices import service as devices
from tests.conftest import unique_name

PASSWORD = "correct horse battery staple"


def settle_background(ctx: AppContext) -> None:
    """Wait for what requests left in the app's background pool (history rows, a clearing of
    failures; the next request makes a fresh pool) and for the notifications being sent."""
    pool, ctx.background_pool = ctx.background_pool, None
    if pool is not None:
        pool.shutdown(wait=True)
    ctx.notifier.settle()


@contextmanager
def serving(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def register_device(url: str, *, key_kind: str = "ecdsa-p256") -> Client:
    """A new user with its first device; the client holds the key file."""
    name = unique_name()
    client = Client(url)
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind=key_kind)
    return client


def add_device(ctx: AppContext, first: Client, *, name: str | None = None, key_kind: str = "ecdsa-p256",
               device_class: str = "other") -> Client:
    """A further device of `first`'s user, added through the device_manager service function."""
    key = generate_key(key_kind)
    issued = devices.issue_device(ctx, user_uuid=first.key_file.user_uuid, device_name=name, is_primary=False,
                                  public_key=public_key_pem(key), csr=None, device_class=device_class)
    devices.store_new_device(ctx, issued)
    record = issued.record
    key_file = KeyFile(base_url=first.key_file.base_url, username=first.key_file.username,
                       user_uuid=record.user_uuid, device_id=record.device_id, device_name=record.device_name,
                       private_key_pem=private_key_pem(key), client_cert_pem=record.cert_pem,
                       fingerprint=record.fingerprint, ca_cert_pem=ctx.ca.certificate_pem())
    return Client(first.key_file.base_url, key_file=key_file)


def bearer_login(client: Client, password: str = PASSWORD) -> dict:
    """Log `client` in the way clients did before DPoP: no proof, so its session is a bearer session
    (CITYLOGIN_DPOP=allowed). The client keeps the tokens and sends them as Bearer."""
    key_file = client.require_key_file()
    challenge = requests.post(f"{client.base_url}/login/challenge", timeout=10).json()["challenge"]
    body = {"username": key_file.username, "password": password, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)}
    response = requests.post(f"{client.base_url}/login/", json=body, timeout=10)
    response.raise_for_status()
    assert response.json()["token_type"] == "Bearer"
    return client._keep_tokens(response.json())


class FakeClock:
    """An injectable clock for AppContext.clock: starts at the real time, moves only when told."""

    def __init__(self) -> None:
        from datetime import datetime, timezone
        self.moment = datetime.now(timezone.utc)

    def __call__(self):
        return self.moment

    def advance(self, seconds: float) -> None:
        from datetime import timedelta
        self.moment += timedelta(seconds=seconds)
