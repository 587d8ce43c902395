"""Every flow that asks a signed-in person for their password again goes through one check
(credential_service.recheck_password), under the login lockout (issue 16 item 2): five wrong
passwords lock it (429 too_many_attempts with Retry-After) and each is audited. A lockout tells
the account's owner, once per lockout, in their locale (item 24c)."""
from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import pytest

from citylogin.client.api import CityloginError, Client
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device, settle_background
from tests.support.product import source_files
from common.web.log_setup import AUDIT_LOGGER

WRONG = "not the password at all"
PLACEHOLDER = re.compile(r"\{\w+\}")


class Recorder:
    def __init__(self) -> None:
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)

    def of(self, event: str) -> list:
        return [m for m in self.messages if m.event == event]


def email_change(client: Client, password: str):
    return client.request("POST", "/account/email", json={"password": password, "new_email": "new@example.net"})


def password_change(client: Client, password: str):
    return client.request("POST", "/account/password",
                          json={"current_password": password, "new_password": "a brand new long passphrase"})


def recovery_codes(client: Client, password: str):
    return client.request("POST", "/account/recovery_codes", json={"password": password})


def account_deletion(client: Client, password: str):
    return client.request("DELETE", "/account", json={"password": password})


FLOWS = {"email_change": email_change, "password_change": password_change, "recovery_codes": recovery_codes,
         "account_deletion": account_deletion}


@pytest.fixture
def audit_lines(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    def lines() -> list[dict]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    return lines


@pytest.fixture
def server(make_server):
    # Many tests of this module fail from 127.0.0.1: only the username's lockout is under test.
    url, ctx = make_server(login_max_failures_per_ip=1000)
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_five_wrong_passwords_lock_the_flow_and_are_audited(server, audit_lines, flow):
    url, ctx, recorder = server
    client = register_device(url)
    client.login(PASSWORD)
    attempt = FLOWS[flow]
    for _ in range(5):
        assert problem(attempt(client, WRONG))[:2] == (401, "invalid_credentials")
    locked = attempt(client, PASSWORD)  # even the right password waits now
    assert problem(locked)[:2] == (429, "too_many_attempts")
    assert int(locked.headers["Retry-After"]) > 0
    with pytest.raises(CityloginError) as login:  # the lock is the account's, at login too
        client.login(PASSWORD)
    assert login.value.code == "too_many_attempts"

    settle_background(ctx)
    user_uuid = client.key_file.user_uuid
    lines = [line for line in audit_lines() if line.get("user_uuid") == user_uuid]
    failures = [line for line in lines if line["event"] == "login_failure" and line.get("flow") == flow]
    assert [line["reason"] for line in failures] == ["invalid_credentials"] * 5 + ["locked_out"]
    assert [line["scope"] for line in lines if line["event"] == "lockout"] == ["username"]
    assert len(recorder.of("lockout")) == 1
    if flow == "email_change":
        assert [m for m in recorder.messages if m.email == "new@example.net"] == []


def test_the_right_password_clears_earlier_failures(server):
    url, _, _ = server
    client = register_device(url)
    client.login(PASSWORD)
    for _ in range(4):
        assert problem(email_change(client, WRONG))[:2] == (401, "invalid_credentials")
    assert email_change(client, PASSWORD).status_code == 202
    for _ in range(4):  # counting starts again
        assert problem(email_change(client, WRONG))[:2] == (401, "invalid_credentials")
    assert email_change(client, PASSWORD).status_code == 202


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_a_lockout_tells_the_owner_once_in_their_locale(server, locale):
    url, ctx, recorder = server
    client = register_device(url)
    client.login(PASSWORD)
    client.set_locale(locale)
    for _ in range(8):  # five failures lock; the three after are refused without counting
        with pytest.raises(CityloginError):
            client.login(WRONG)
    [message] = recorder.of("lockout")
    assert message.user_uuid == client.key_file.user_uuid
    assert message.email == f"{client.key_file.username}@example.com"
    expected = {"ja": ("アカウントへのログインを一時停止しました", "（UTC）"),
                "en": ("Sign-ins to your account were paused", " UTC")}[locale]
    assert message.subject == expected[0]
    assert client.key_file.username in message.body and expected[1] in message.body
    assert "127.0.0.1" in message.body
    assert not PLACEHOLDER.search(message.subject + message.body), message.body


def test_parallel_wrong_passwords_make_one_lockout_and_one_message(server, audit_lines):
    url, ctx, recorder = server
    client = register_device(url)
    barrier, codes = threading.Barrier(10), []

    def guess() -> None:
        barrier.wait()
        try:
            Client(url, key_file=client.key_file).login(WRONG)
        except CityloginError as refused:
            codes.append(refused.code)

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(codes) == 10 and set(codes) <= {"invalid_credentials", "too_many_attempts"}
    settle_background(ctx)
    lockouts = [line for line in audit_lines()
                if line["event"] == "lockout" and line.get("user_uuid") == client.key_file.user_uuid]
    assert len(lockouts) == 1, lockouts
    assert len(recorder.of("lockout")) == 1


def test_only_the_credential_service_checks_a_password():
    """One place compares passwords (under the lockout); a flow that verified a hash itself
    would be an oracle again."""
    root = Path(__file__).resolve().parents[2]
    product = source_files()
    checking = sorted(str(p.relative_to(root)) for p in product
                      if re.search(r"\.passwords\.(verify|check)\(", p.read_text()))
    assert checking == ["accounts/credential_service.py"]
