"""Passwords after registration and account deletion (SPEC §4 /account): POST /account/password,
POST /account/password_reset(/confirm) and DELETE /account."""
from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from cryptography import x509

from citylogin.client.api import CityloginError, Client
from tests.support.fixtures import bearer_problem, problem
from tests.support.live import PASSWORD, FakeClock, add_device, register_device, settle_background

NEW_PASSWORD = "a brand new long passphrase"
RESET_LINK = re.compile(r"(http://localhost:5000)/#reset=([A-Za-z0-9_-]{40,})")


class Recorder:
    def __init__(self) -> None:
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)

    def wait_for(self, event: str, count: int = 1, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if m.event == event]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {event} message: {[m.event for m in self.messages]}")


def two_logged_in_devices(url, ctx) -> tuple[Client, Client]:
    first = register_device(url)
    second = add_device(ctx, first, name="tablet")
    first.login(PASSWORD)
    second.login(PASSWORD)
    return first, second


def change(client: Client, current: str, new: str = NEW_PASSWORD, **extra) -> requests.Response:
    return client.request("POST", "/account/password", json={"current_password": current, "new_password": new,
                                                               **extra})


def reset(url: str, email: str) -> requests.Response:
    return requests.post(url + "/account/password_reset", json={"email": email}, timeout=30)


def confirm(url: str, token: str, new_password: str = NEW_PASSWORD) -> requests.Response:
    return requests.post(url + "/account/password_reset/confirm", json={"token": token, "new_password": new_password},
                         timeout=30)


def test_a_wrong_current_password_is_refused_and_counted(make_server):
    url, _ = make_server(max_concurrent_devices=0, login_max_failures=2)
    client = register_device(url)
    client.login(PASSWORD)
    assert problem(change(client, "not the password"))[:2] == (401, "invalid_credentials")
    assert problem(change(client, "not the password"))[:2] == (401, "invalid_credentials")
    assert problem(change(client, PASSWORD))[:2] == (429, "too_many_attempts")


def test_a_weak_new_password_is_refused(make_server):
    url, _ = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    assert problem(change(client, PASSWORD, "short"))[:2] == (400, "invalid_field")
    assert problem(change(client, PASSWORD, "password123"))[:2] == (400, "invalid_field")


def test_changing_the_password_ends_the_other_sessions(make_server):
    url, ctx = make_server(max_concurrent_devices=0)
    ctx.notifier.backend = recorder = Recorder()
    first, second = two_logged_in_devices(url, ctx)
    assert change(first, PASSWORD).status_code == 204
    assert bearer_problem(second.request("GET", "/session/me")) == (401, "session_revoked", "password_changed")
    assert first.request("GET", "/session/me").status_code == 200
    assert [m.event for m in recorder.messages if m.event == "password_changed"] == ["password_changed"]
    assert first.login(NEW_PASSWORD)["session_id"]
    with pytest.raises(CityloginError) as refused:
        second.login(PASSWORD)
    assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")


def test_other_sessions_may_stay(make_server):
    url, ctx = make_server(max_concurrent_devices=0)
    first, second = two_logged_in_devices(url, ctx)
    assert change(first, PASSWORD, logout_other_sessions=False).status_code == 204
    assert second.request("GET", "/session/me").status_code == 200


def test_reset_answers_alike_for_unknown_and_known_addresses(make_server):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    client = register_device(url)
    known = reset(url, f"{client.key_file.username.upper()}@example.com")
    unknown = reset(url, f"nobody-{client.key_file.username}@example.com")
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert known.status_code == 202
    [sent] = recorder.wait_for("password_reset")
    assert sent.user_uuid == client.key_file.user_uuid
    time.sleep(0.3)
    assert len([m for m in recorder.messages if m.event == "password_reset"]) == 1


def test_the_reset_link_works_once_and_ends_every_session(make_server):
    url, ctx = make_server(max_concurrent_devices=0)
    ctx.notifier.backend = recorder = Recorder()
    first, second = two_logged_in_devices(url, ctx)
    assert reset(url, f"{first.key_file.username}@example.com").status_code == 202
    [sent] = recorder.wait_for("password_reset")
    token = RESET_LINK.search(sent.body).group(2)
    stored = repr(ctx.dynamodb.scan(TableName=ctx.tables.one_time_tokens)["Items"])
    assert token not in stored
    assert problem(confirm(url, token, "short"))[:2] == (400, "invalid_field")  # the token is not used up
    assert confirm(url, token).status_code == 204
    assert problem(confirm(url, token))[:2] == (400, "invalid_reset_token")
    assert problem(confirm(url, "x" * 43))[:2] == (400, "invalid_reset_token")
    for client in (first, second):
        assert bearer_problem(client.request("GET", "/session/me")) == (401, "session_revoked", "password_reset")
    assert second.login(NEW_PASSWORD)["device_id"] == second.key_file.device_id  # devices untouched
    with pytest.raises(CityloginError) as refused:
        first.login(PASSWORD)
    assert refused.value.code == "invalid_credentials"


def test_reset_requests_are_limited_per_client_and_mails_per_address(make_server):
    """Only the client's own allowance (20 an hour) answers 429; the address's budget caps the mails
    (5 an hour), never the answer (tests/accounts/test_reset_mail_budget.py: the owner keeps a link)."""
    url, ctx = make_server(trusted_proxies=1)
    ctx.notifier.backend = recorder = Recorder()
    email = f"{register_device(url).key_file.username}@example.com"
    ctx.clock = FakeClock()  # one rate-limit window throughout
    client_ip = f"10.7.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"

    def ask() -> requests.Response:
        return requests.post(url + "/account/password_reset", json={"email": email},
                             headers={"X-Forwarded-For": client_ip}, timeout=30)
    assert [ask().status_code for _ in range(20)] == [202] * 20
    limited = ask()
    assert problem(limited)[:2] == (429, "too_many_attempts") and int(limited.headers["Retry-After"]) > 0
    settle_background(ctx)
    assert len([m for m in recorder.messages if m.event == "password_reset"]) == 5


def test_deleting_the_account_frees_the_names_and_revokes_the_certificates(make_server):
    url, ctx = make_server(max_concurrent_devices=0)
    first, second = two_logged_in_devices(url, ctx)
    user_uuid, username = first.key_file.user_uuid, first.key_file.username
    wrong = first.request("DELETE", "/account", json={"password": "not the password"})
    assert problem(wrong)[:2] == (401, "invalid_credentials")
    assert first.request("DELETE", "/account", json={"password": PASSWORD}).status_code == 204
    for client in (first, second):
        assert bearer_problem(client.request("GET", "/session/me")) == (401, "session_revoked", "account_deleted")

    crl = x509.load_pem_x509_crl(requests.get(url + "/device/crl.pem", timeout=10).content)
    for client in (first, second):
        serial = x509.load_pem_x509_certificate(client.key_file.client_cert_pem.encode()).serial_number
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None

    # Until the sweeper's last pass, the users item is a tombstone without the person's data.
    tombstone = ctx.dynamodb.get_item(TableName=ctx.tables.users, ConsistentRead=True,
                                      Key={"user_uuid": {"S": user_uuid}})["Item"]
    assert sorted(tombstone) == ["deleting_since", "deletion", "deletion_finished", "expires_ttl", "user_uuid"]
    for table, key in ((ctx.tables.devices, "user_uuid"),
                       (ctx.tables.login_history, "user_uuid"), (ctx.tables.presence, "user_uuid")):
        left = ctx.dynamodb.query(TableName=table, KeyConditionExpression="#k = :u",
                                  ExpressionAttributeNames={"#k": key},
                                  ExpressionAttributeValues={":u": {"S": user_uuid}})["Items"]
        assert left == [], table
    for client in (first, second):  # kept for the 401 account_deleted, without the client's details
        record = ctx.dynamodb.get_item(TableName=ctx.tables.sessions, ConsistentRead=True,
                                       Key={"session_id": {"S": client.session_id}})["Item"]
        assert record["revoked_reason"]["S"] == "account_deleted"
        assert "ip" not in record and "user_agent" not in record, sorted(record)

    again = Client(url)
    again.register(username=username, email=f"{username}@example.com", password=PASSWORD)
    assert again.key_file.user_uuid != user_uuid
    assert again.login(PASSWORD)["user_uuid"] == again.key_file.user_uuid


def test_a_rehash_racing_a_password_change_never_puts_the_old_password_back(make_server):
    """A login that verified a hash of older parameters rehashes it after the check; if the password
    changed in between (the login read the user before the change), the rehash must not write a
    hash of the old password over the new one."""
    from argon2 import PasswordHasher

    from accounts import credential_service, user_service

    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    user_uuid = client.key_file.user_uuid
    older = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1).hash(PASSWORD)  # needs a rehash
    assert user_service.replace_password_hash(ctx, user_uuid=user_uuid, password_hash=older)
    read_by_the_login = user_service.get_user(ctx, user_uuid=user_uuid)
    assert change(client, PASSWORD).status_code == 204           # the change lands in between
    assert credential_service._password_ok(ctx, read_by_the_login, PASSWORD)  # verified, then rehashes
    stored = user_service.get_user(ctx, user_uuid=user_uuid).password_hash
    assert ctx.passwords.check(stored, NEW_PASSWORD) and not ctx.passwords.check(stored, PASSWORD)
