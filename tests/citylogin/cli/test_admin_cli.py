"""`citylogin admin`: the operator's commands against a running app that shares its DynamoDB, table
prefix and key-encryption key (SPEC §4 /account: account_locked; §5: the per-user limit)."""
from __future__ import annotations

import base64
import os
import re
import threading

import pytest
import requests
from click.testing import CliRunner

from accounts import user_service as users
from citylogin.cli.main import main
from citylogin.client.api import Client, CityloginError, ConcurrentLoginRequired
from flows import login as login_service
from sessions import service as sessions
from tests.support.fixtures import cli_environment, problem
from tests.support.live import PASSWORD, add_device, register_device


@pytest.fixture(scope="module")
def kek() -> str:
    # One key-encryption key for the module: its apps share one key ring (one table prefix).
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def start(make_server, base_config, kek, tmp_path):
    """start(**settings) -> (url, ctx, env): an app, and the CLI environment that reaches the same
    DynamoDB tables and key ring."""
    def run(**settings):
        url, ctx = make_server(key_encryption_key=kek, **settings)
        return url, ctx, cli_environment(base_config, kek=kek, data_dir=str(tmp_path))
    return run


ACTIONS = {"lock", "unlock", "revoke-sessions", "unbind", "set-limit"}  # each needs --reason


def admin(env: dict, *args: str, ok: bool = True):
    if ACTIONS & set(args) and "--reason" not in args:
        args = (*args, "--reason", "support ticket 1")
    result = CliRunner().invoke(main, ["admin", *args], env=env)
    assert (result.exit_code == 0) is ok, result.output
    assert "Traceback" not in result.output
    return result


def login_error(client) -> tuple[int, str]:
    with pytest.raises(CityloginError) as raised:
        client.login(PASSWORD)
    return raised.value.status, raised.value.code


def refresh_response(url: str, client) -> requests.Response:
    return requests.post(url + "/session/refresh", json={"refresh_token": client.refresh_token},
                         headers={"DPoP": client.proof("POST", url + "/session/refresh")}, timeout=10)


def read_first_event(stream: requests.Response, found: list) -> None:
    lines = stream.iter_lines(decode_unicode=True)
    for line in lines:
        if line.startswith("event:"):
            found.append((line.split(":", 1)[1].strip(), next(lines)))
            return


def test_lock_refuses_the_session_the_refresh_and_a_login_until_unlock(start):
    url, ctx, env = start(events_heartbeat=1, events_poll_interval=0.2)
    client = register_device(url)
    client.login(PASSWORD)
    username = client.key_file.username
    stream = client.request("GET", "/session/events", stream=True)
    assert stream.status_code == 200
    events: list = []
    reader = threading.Thread(target=read_first_event, args=(stream, events))
    reader.start()

    assert "1 session(s) ended" in admin(env, "lock", username).output

    assert problem(client.request("GET", "/session/me"))[:2] == (403, "account_locked")
    assert problem(refresh_response(url, client))[:2] == (403, "account_locked")
    reader.join(timeout=10)
    stream.close()
    assert events and events[0][0] == "session_revoked" and '"reason": "admin"' in events[0][1], events
    assert login_error(client) == (403, "account_locked")  # the right password, a valid device
    wrong = requests.post(url + "/login/", json={"username": username, "password": "not the password",
                                                 "client_cert_fp": client.key_file.fingerprint,
                                                 "challenge": "x", "signature": "eA=="}, timeout=10)
    assert problem(wrong)[:2] == (401, "invalid_credentials")  # a guesser learns nothing of the lock
    assert "locked    yes" in admin(env, "show", username).output
    assert sessions.live_devices(ctx, user_uuid=client.key_file.user_uuid) == []

    admin(env, "unlock", username)
    old_session = client.auth_headers("GET", url + "/session/me")  # the locked session's token, and a proof
    client.login(PASSWORD)
    assert client.request("GET", "/session/me").status_code == 200
    stale = requests.get(url + "/session/me", headers=old_session, timeout=10)
    assert problem(stale)[0] == 403  # the lock ended it for good
    assert "locked    no" in admin(env, "show", username).output


def test_a_login_that_read_the_user_before_the_lock_opens_no_session(start, monkeypatch):
    url, ctx, env = start()
    client = register_device(url)
    user_uuid = client.key_file.user_uuid
    take_seat = login_service.sessions.take_seat

    def lock_first(app_ctx, seats, **kwargs):  # the lock commits between the login's read and its transaction
        users.lock_account(app_ctx, user_uuid=user_uuid)
        return take_seat(app_ctx, seats, **kwargs)

    monkeypatch.setattr(login_service.sessions, "take_seat", lock_first)
    assert login_error(client) == (403, "account_locked")
    assert sessions.read_presence(ctx, user_uuid=user_uuid).entries == {}
    assert sessions.list_user_sessions(ctx, user_uuid=user_uuid) == []


def test_logins_racing_a_lock_never_leave_a_live_session(start):
    url, ctx, env = start(concurrency_policy="force", max_concurrent_devices=0)
    for _ in range(3):
        first = register_device(url)
        clients = [first, add_device(ctx, first), add_device(ctx, first)]
        user_uuid = first.key_file.user_uuid
        barrier = threading.Barrier(len(clients) + 1)
        outcomes: list = []

        def log_in(client, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                client.login(PASSWORD)
                outcomes.append(200)
            except CityloginError as error:
                outcomes.append((error.status, error.code))

        def lock(barrier=barrier, user_uuid=user_uuid):
            barrier.wait()
            users.lock_account(ctx, user_uuid=user_uuid)

        threads = [threading.Thread(target=log_in, args=(c,)) for c in clients] + [threading.Thread(target=lock)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert set(outcomes) <= {200, (403, "account_locked")}, outcomes
        assert sessions.live_devices(ctx, user_uuid=user_uuid) == []
        assert [s.session_id for s in sessions.list_user_sessions(ctx, user_uuid=user_uuid)
                if s.status == "active"] == []
        for client in clients:
            if client.access_token:
                assert problem(client.request("GET", "/session/me"))[:2] == (403, "account_locked")


def test_set_limit_replaces_the_total_for_that_user(start):
    url, ctx, env = start(concurrency_policy="ask", max_concurrent_devices=1)
    first = register_device(url)
    second = add_device(ctx, first)
    username, user_uuid = first.key_file.username, first.key_file.user_uuid
    first.login(PASSWORD)
    with pytest.raises(ConcurrentLoginRequired):
        second.login(PASSWORD)

    assert "2 (set for this user)" in admin(env, "set-limit", username, "2").output
    assert users.get_user(ctx, user_uuid=user_uuid).max_concurrent_devices == 2
    second.login(PASSWORD)
    assert [c.request("GET", "/session/me").status_code for c in (first, second)] == [200, 200]
    assert "2 live" in admin(env, "show", username).output

    assert "1 (default)" in admin(env, "set-limit", username, "default").output
    assert users.get_user(ctx, user_uuid=user_uuid).max_concurrent_devices is None
    with pytest.raises(ConcurrentLoginRequired):
        first.login(PASSWORD)  # the other device is logged in: the default of 1 applies again
    admin(env, "set-limit", username, "0")
    first.login(PASSWORD)
    admin(env, "set-limit", "--clear", username)
    assert users.get_user(ctx, user_uuid=user_uuid).max_concurrent_devices is None
    assert "N" in admin(env, "set-limit", username, "many", ok=False).output


def test_revoke_sessions_ends_every_session_with_reason_admin(start):
    url, ctx, env = start(concurrency_policy="force", max_concurrent_devices=0)
    first = register_device(url)
    second = add_device(ctx, first)
    for client in (first, second):
        client.login(PASSWORD)
    assert "2 session(s)" in admin(env, "revoke-sessions", first.key_file.username).output
    for client in (first, second):
        assert problem(client.request("GET", "/session/me")) == (401, "session_revoked", "admin")
    first.login(PASSWORD)  # not a lock: the account logs in again
    assert first.request("GET", "/session/me").status_code == 200


def test_unbind_revokes_even_the_last_device(start):
    url, ctx, env = start()
    client = register_device(url)
    client.login(PASSWORD)
    username, device_id = client.key_file.username, client.key_file.device_id
    admin(env, "unbind", username, device_id)
    assert problem(client.request("GET", "/session/me")) == (401, "session_revoked", "device_unbound")
    assert login_error(client) == (403, "device_revoked")
    assert "revoked" in admin(env, "show", username).output
    other = register_device(url)
    refused = admin(env, "unbind", username, other.key_file.device_id, ok=False)  # not this user's device
    assert "No such device" in refused.output


def test_show_lists_the_account_without_secrets(start):
    url, ctx, env = start()
    client = register_device(url)
    client.login(PASSWORD)
    output = admin(env, "show", client.key_file.username).output
    for shown in (client.key_file.user_uuid, client.key_file.username, f"{client.key_file.username}@example.com",
                  client.key_file.device_id, client.session_id, "127.0.0.1", "1 (default)"):
        assert shown in output
    assert "$argon2" not in output and "PRIVATE KEY" not in output and "BEGIN" not in output
    assert re.search(r"[0-9a-fA-F]{64}", output) is None
    assert client.key_file.fingerprint not in output and client.access_token not in output


def test_an_unknown_user_is_one_line(start):
    url, ctx, env = start()
    result = admin(env, "lock", "nobody-here", ok=False)
    assert "no user named" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_locked_account_pairs_no_new_device(start):
    url, _, env = start(max_concurrent_devices=2)
    first = register_device(url)
    first.login(PASSWORD)
    qr_code = first.request_pairing()["qr_code"]   # shown before the lock
    admin(env, "lock", first.key_file.username)
    second = Client(url)
    with pytest.raises(CityloginError) as refused:
        second.pair(qr_code, username=first.key_file.username, password=PASSWORD)
    assert (refused.value.status, refused.value.code) == (403, "account_locked")
    admin(env, "unlock", first.key_file.username)
    second.pair(qr_code, username=first.key_file.username, password=PASSWORD)  # nothing was used up
    first.login(PASSWORD)
    assert len(first.get_json("/device/list")["devices"]) == 2  # and nothing half-written by the refusal


def audit_lines(path) -> list[dict]:
    import json
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_audit_line_of_an_operator_action_names_the_operator(start, tmp_path):
    import getpass

    url, ctx, env = start(concurrency_policy="force", max_concurrent_devices=0)
    audit_file = tmp_path / "operator-audit.jsonl"
    env = {**env, "CITYLOGIN_AUDIT_LOG": str(audit_file)}
    first = register_device(url)
    second = add_device(ctx, first)
    for client in (first, second):
        client.login(PASSWORD)
    username = first.key_file.username

    admin(env, "--operator", "carol@ops", "lock", username)
    locked = [e for e in audit_lines(audit_file) if e["event"] in ("account_locked", "session_revoked")]
    assert len(locked) == 3 and {e.get("operator") for e in locked} == {"carol@ops"}, locked

    seen = len(audit_lines(audit_file))
    admin(env, "unlock", username)     # no --operator: the OS user against a local engine
    admin(env, "set-limit", username, "2")
    actions = audit_lines(audit_file)[seen:]
    assert {e["event"] for e in actions} >= {"account_unlocked", "concurrent_limit_set"}
    assert {e.get("operator") for e in actions} == {getpass.getuser()}, actions


def test_export_writes_the_persons_data_to_a_private_file_and_audits_it(start, tmp_path):
    import json

    url, ctx, env = start()
    client = register_device(url)
    client.login(PASSWORD)
    username, target = client.key_file.username, tmp_path / "data.json"
    assert admin(env, "export", username, "--output", str(target), ok=False).exit_code == 2  # no --reason
    assert not target.exists()
    admin(env, "export", username, "--reason", "ticket 14: access request", "--output", str(target))
    assert target.stat().st_mode & 0o777 == 0o600
    document = json.loads(target.read_text())
    assert document["format"] == "citylogin-export/1" and document["users"][0]["username"] == username
    assert [d["device_id"] for d in document["devices"] if d["device_id"] != "#registered"] == [
        client.key_file.device_id]
    assert "$argon2" not in target.read_text() and client.access_token not in target.read_text()

    printed = json.loads(admin(env, "export", username, "--reason", "ticket 14: again").stdout)
    [row] = [r for r in printed["login_history"] if r["user_uuid"].startswith("audit#")]
    assert (row["action"], row["reason"]) == ("export", "ticket 14: access request")
    missing = admin(env, "export", "nobody-here", "--reason", "x", "--output", str(tmp_path / "none.json"), ok=False)
    assert "no user named" in missing.output and not (tmp_path / "none.json").exists()


def test_export_writes_the_readable_copy_as_html_in_the_persons_language(start, tmp_path):
    url, ctx, env = start()
    client = register_device(url)
    client.login(PASSWORD)
    client.request("PATCH", "/account", json={"locale": "ja"})
    username, target = client.key_file.username, tmp_path / "data.html"
    bad = admin(env, "export", username, "--reason", "ticket 15", "--format", "html", "--time-zone", "Moon/Base",
                "--output", str(target), ok=False)
    assert bad.exit_code == 2 and "--time-zone" in bad.output and not target.exists()
    admin(env, "export", username, "--reason", "ticket 15", "--format", "html", "--time-zone", "Asia/Tokyo",
          "--output", str(target))
    page = target.read_text()
    assert target.stat().st_mode & 0o777 == 0o600
    assert page.startswith("<!DOCTYPE html>") and '<html lang="ja">' in page and "Asia/Tokyo" in page
    assert username in page and "あなたのデバイス" in page and "audit#" not in page
