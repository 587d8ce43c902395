"""Notifications never stall a request (issue 16 item 22, SPEC §7): with SES "black-holed" (a
local socket that accepts connections and never answers), registration and login answer at once;
the mails are tried a few times with short timeouts in the background, and the failure is logged
without the address, the subject or any link's token."""
from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from citylogin.client.api import Client
from tests.conftest import unique_name
from tests.support.live import PASSWORD, settle_background

TIMEOUT, ATTEMPTS = 2, 3  # sent inline, one mail would hold its request for >= 6 s


@contextmanager
def black_hole() -> Iterator[tuple[str, list[socket.socket]]]:
    """http://127.0.0.1:<port> that accepts every connection and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    finally:
        listener.close()
        for connection in held:
            connection.close()


@pytest.fixture
def aws_credentials(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)


def test_a_black_holed_mail_service_stalls_no_request_and_is_logged_without_secrets(
        make_server, aws_credentials, caplog):
    with black_hole() as (endpoint, held):
        url, ctx = make_server(notifier="ses", ses_sender="no-reply@example.com", notifier_endpoint_url=endpoint,
                               notify_timeout=TIMEOUT, notify_attempts=ATTEMPTS, aws_region="eu-west-1")
        caplog.set_level(logging.WARNING, logger="citylogin.notify")
        name, client = unique_name(), Client(url)
        took = {}
        started = time.monotonic()
        client.register(username=name, email=f"{name}@example.com", password=PASSWORD)  # a verification mail
        took["register"] = time.monotonic() - started
        started = time.monotonic()
        client.login(PASSWORD)                            # the device's first sign-in: a "new sign-in" mail
        took["login"] = time.monotonic() - started
        print(f"with SES black-holed: register {took['register']:.2f} s, login {took['login']:.2f} s")
        assert max(took.values()) < TIMEOUT * ATTEMPTS / 2, took
        settle_background(ctx)                            # the background sends give up meanwhile
        assert len(held) >= 2 * ATTEMPTS                  # each mail was tried ATTEMPTS times
    mine = client.key_file.user_uuid   # this account's mails: the log is the whole test process's
    failures = [r.getMessage() for r in caplog.records if "failed after" in r.getMessage() and mine in r.getMessage()]
    assert {f.split()[1] for f in failures} >= {"verify_email", "new_sign_in"}, failures
    assert all(f"failed after {ATTEMPTS} attempt(s): ReadTimeoutError" in f for f in failures), failures
    logged = caplog.text
    assert name not in logged and "#verify=" not in logged and "example.com" not in logged
