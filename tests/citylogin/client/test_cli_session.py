"""`citylogin client` on the session `login` keeps in the key file: whoami, logout, refresh, a displaced
device, devices, sessions, history and pair-request, as tables and as --json, against the all-in-one
app on DynamoDB Local; and the table helpers."""
from __future__ import annotations

import json
import re
import stat
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from citylogin.client import keys as client_keys
from citylogin.cli.output import local_time, resolve_prefix, short_ids, table
from citylogin.client.api import CityloginError, Client, KeyFile
from citylogin.client.cli import client as client_cli
from citylogin.client.cli import PASSWORD_ENV
from tests.conftest import unique_name
from tests.support.live import PASSWORD, FakeClock, add_device, register_device
from tests.support.terminal import citylogin_on_a_terminal

DISPLACED = "Error: This device was logged out: displaced. Run `citylogin client login`."


def run(path, *args: str, password: str | None = PASSWORD, input: str | None = None):
    """`citylogin client ARGS --key-file PATH`; no password or token may appear in what it prints."""
    secrets = _stored_tokens(path)
    result = CliRunner().invoke(client_cli, [*args, "--key-file", str(path)], env={PASSWORD_ENV: password},
                                input=input)
    secrets |= _stored_tokens(path)
    assert "Traceback" not in result.output, result.output
    assert not [s for s in secrets | {PASSWORD} if s in result.output], result.output
    return result


def _stored_tokens(path) -> set[str]:
    if not path.exists() or not KeyFile.load(path).session:
        return set()
    session = KeyFile.load(path).session
    return {session["access_token"], session["refresh_token"]}


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def as_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def json_error(result) -> dict:
    assert result.exit_code == 1 and result.stdout == "", result.output
    return json.loads(result.stderr)["error"]


def stored(path) -> dict | None:
    return KeyFile.load(path).session


@pytest.fixture
def server(make_server):
    return make_server(max_concurrent_devices=0)


@pytest.fixture
def device(server, tmp_path):
    """(library client, key file path) of a new account's device, logged in through the CLI."""
    url, _ = server
    client = register_device(url)
    path = tmp_path / "device.json"
    client.key_file.save(path)
    ok(run(path, "login"))
    return client, path


def table_rows(output: str) -> list[str]:
    return output.strip().splitlines()[1:]


# --- login, whoami, logout ----------------------------------------------------------------------

def test_login_keeps_the_session_in_a_0600_file_and_whoami_needs_no_password(server, tmp_path):
    url, _ = server
    client = register_device(url)
    path = tmp_path / "device.json"
    client.key_file.save(path)
    answer = as_json(run(path, "login", "--json"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    session = stored(path)
    assert set(session) == {"session_id", "access_token", "refresh_token", "access_expires_at", "token_type"}
    assert session["token_type"] == "DPoP"  # bound to the device key: whoami below makes proofs with it
    assert answer["session_id"] == session["session_id"] and answer["device_id"] == client.key_file.device_id
    assert datetime.fromisoformat(session["access_expires_at"]) > datetime.now(timezone.utc)
    assert [p.name for p in tmp_path.iterdir()] == ["device.json"]  # no temporary file left behind

    me = as_json(run(path, "whoami", "--json", password=None))  # no password and no prompt
    assert (me["session_id"], me["device_id"]) == (session["session_id"], client.key_file.device_id)
    human = ok(run(path, "whoami", password=None))
    assert re.search(rf"^session: +{session['session_id']}$", human, re.MULTILINE)
    assert client.key_file.username in human


def test_the_cli_names_itself_in_its_user_agent(server, device):
    """Its sessions and history say "citylogin-cli/<version> (<system>)", not python-requests' own name."""
    _, path = device
    [session] = as_json(run(path, "sessions", "list", "--json"))["sessions"]
    agent = session["user_agent"]
    assert re.fullmatch(r"citylogin-cli/\S+ \([^)]+\) python-requests/\S+", agent), agent
    assert session["user_agent"] == Client("http://x").http.headers["User-Agent"].replace("citylogin-python/",
                                                                                          "citylogin-cli/")
    history = as_json(run(path, "history", "--json"))["items"]
    assert history[0]["user_agent"] == agent


def test_the_key_file_defaults_to_citylogin_key_file(server, tmp_path):
    url, _ = server
    path = tmp_path / "new" / "dir" / "device.json"
    env = {PASSWORD_ENV: PASSWORD, "CITYLOGIN_KEY_FILE": str(path)}
    name = unique_name()
    registered = CliRunner().invoke(client_cli, ["register", "--url", url, "--username", name,
                                                 "--email", f"{name}@example.com"], env=env)
    assert registered.exit_code == 0, registered.output
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert CliRunner().invoke(client_cli, ["login"], env=env).exit_code == 0
    me = CliRunner().invoke(client_cli, ["whoami", "--json"], env={"CITYLOGIN_KEY_FILE": str(path)})
    assert json.loads(me.stdout)["device_id"] == KeyFile.load(path).device_id


def test_logout_ends_the_session_and_removes_the_tokens(device):
    _, path = device
    ended = stored(path)
    assert "logged out" in ok(run(path, "logout"))
    assert stored(path) is None
    old = Client(key_file=KeyFile.load(path))
    old.use_tokens(ended)
    assert old.request("GET", "/session/me").json()["reason"] == "logged_out"
    result = run(path, "whoami", password=None)
    assert result.exit_code == 1 and "not logged in" in result.output
    assert json_error(run(path, "whoami", "--json"))["code"] == "not_logged_in"
    assert as_json(run(path, "logout", "--json")) == {"logged_out": False, "session_id": None}


def test_an_expired_access_token_is_refreshed_transparently(server, device, monkeypatch):
    _, ctx = server
    _, path = device
    ctx.clock = clock = FakeClock()
    # The CLI's own client makes the DPoP proofs, whose iat the server checks against its clock.
    monkeypatch.setattr(client_keys, "time", SimpleNamespace(time=lambda: clock().timestamp()))
    first = stored(path)
    clock.advance(ctx.settings.access_token_ttl + 5)  # the server now answers 401 token_expired
    assert as_json(run(path, "whoami", "--json"))["session_id"] == first["session_id"]
    second = stored(path)
    assert second["refresh_token"] != first["refresh_token"] and second["session_id"] == first["session_id"]

    # Near its stored end the token is refreshed before the call.
    key_file = KeyFile.load(path)
    key_file.session["access_expires_at"] = "2000-01-01T00:00:00Z"
    key_file.save(path)
    ok(run(path, "whoami"))
    assert stored(path)["refresh_token"] != second["refresh_token"]
    assert datetime.fromisoformat(stored(path)["access_expires_at"]) > datetime.now(timezone.utc)


def test_a_displaced_device_says_so_in_one_line(make_server, tmp_path):
    url, ctx = make_server(max_concurrent_devices=1)
    first = register_device(url)
    path = tmp_path / "first.json"
    first.key_file.save(path)
    ok(run(path, "login"))
    add_device(ctx, first, name="phone").login(PASSWORD, force=True)

    result = run(path, "devices", "list")
    assert result.exit_code == 1 and result.output.strip() == DISPLACED
    key_file = KeyFile.load(path)
    key_file.session["access_expires_at"] = "2000-01-01T00:00:00Z"  # the refresh is refused too
    key_file.save(path)
    assert run(path, "whoami").output.strip() == DISPLACED
    assert json_error(run(path, "whoami", "--json")) | {"message": ""} == \
        {"status": 401, "code": "session_revoked", "reason": "displaced", "message": ""}
    refused = run(path, "login")  # a script: no one to ask which device goes, so it changes nothing
    assert refused.exit_code == 1 and "--displace" in refused.output and "'phone' (default)" in refused.output
    terminal = citylogin_on_a_terminal("client", "login", "--key-file", str(path), env={PASSWORD_ENV: PASSWORD})
    terminal.wait_for(r"Which device should be signed out\?")  # a person is asked; Enter: the default, the phone
    assert re.search(r"^1\. +phone +other .*\(default\)$", terminal.output, re.MULTILINE), terminal.output
    terminal.type("")
    terminal.wait_for(r"logged out: phone")
    assert terminal.finish() == 0, terminal.output
    # History tells the question answered "continue" from a refusal (its row is written before the answer).
    rows = [row for row in table_rows(ok(run(path, "history", "--limit", "3"))) if "asked" in row]
    assert [row.split()[2:4] for row in rows] == [["asked,", "continued"]], rows


# --- devices ----------------------------------------------------------------------------------

def test_devices_list_rename_logout_and_unbind(server, device):
    _, ctx = server
    client, path = device
    phone = add_device(ctx, client, name="phone")
    phone.login(PASSWORD)
    listed = as_json(run(path, "devices", "list", "--json"))["devices"]
    assert [(d["device_name"], d["current"]) for d in listed] == [("First device", True), ("phone", False)]
    rows = table_rows(ok(run(path, "devices", "list")))
    assert rows[0].startswith("* ") and "First device" in rows[0] and "phone" in rows[1]
    short = phone.key_file.device_id[:8]
    assert short in rows[1] and phone.key_file.device_id not in rows[1]

    assert "renamed to 'old phone'" in ok(run(path, "devices", "rename", short, "old phone"))
    renamed = as_json(run(path, "devices", "rename", "--json", phone.key_file.device_id, "blue phone"))
    assert renamed == {"device_id": phone.key_file.device_id, "device_name": "blue phone", "device_class": "other"}

    assert "logged out" in ok(run(path, "devices", "logout", short))
    assert phone.request("GET", "/session/me").json()["reason"] == "remote_logout"
    assert as_json(run(path, "devices", "logout", "--json", short))["logged_out"] is False

    unbound = as_json(run(path, "devices", "unbind", "--json", short))
    assert unbound == {"device_id": phone.key_file.device_id, "status": "revoked"}
    with pytest.raises(CityloginError) as refused:
        phone.login(PASSWORD)
    assert refused.value.code == "device_revoked"
    last = run(path, "devices", "unbind", client.key_file.device_id[:8])
    assert last.exit_code == 1 and "last_device" in last.output and len(last.output.strip().splitlines()) == 1
    assert "this device" in ok(run(path, "devices", "unbind", "--confirm-last", client.key_file.device_id))
    assert stored(path) is None


def test_an_api_error_is_one_line_or_a_json_object_on_stderr(device):
    _, path = device
    unknown = "00000000-0000-4000-8000-000000000000"
    result = run(path, "devices", "rename", unknown, "x")
    assert result.exit_code == 1 and result.output.startswith("Error: 404 device_not_found")
    assert len(result.output.strip().splitlines()) == 1
    error = json_error(run(path, "devices", "rename", "--json", unknown, "x"))
    assert (error["status"], error["code"]) == (404, "device_not_found")


# --- sessions and history ---------------------------------------------------------------------

def test_sessions_list_revoke_and_logout_all(server, device):
    _, ctx = server
    client, path = device
    phone = add_device(ctx, client, name="phone")
    phone.login(PASSWORD)
    listed = as_json(run(path, "sessions", "list", "--json"))["sessions"]
    assert sorted(s["device_name"] for s in listed) == ["First device", "phone"]
    assert [s["session_id"] for s in listed if s["current"]] == [stored(path)["session_id"]]
    assert len(table_rows(ok(run(path, "sessions", "list")))) == 2

    assert "ended" in ok(run(path, "sessions", "revoke", phone.session_id[:8]))
    assert phone.request("GET", "/session/me").json()["reason"] == "remote_logout"
    assert len(table_rows(ok(run(path, "sessions", "list")))) == 1
    everything = ok(run(path, "sessions", "list", "--all"))
    assert "revoked (remote_logout)" in everything and len(table_rows(everything)) == 2

    phone.login(PASSWORD)
    assert as_json(run(path, "sessions", "logout-all", "--keep-current", "--json"))["kept_current"] is True
    assert phone.request("GET", "/session/me").status_code == 401
    ok(run(path, "whoami"))
    assert "this device's too" in ok(run(path, "sessions", "logout-all"))
    assert stored(path) is None and "not logged in" in run(path, "whoami").output


def test_revoking_this_device_s_own_session_removes_its_tokens(device):
    _, path = device
    own = stored(path)["session_id"]
    assert as_json(run(path, "sessions", "revoke", "--json", own)) == {"session_id": own, "revoked": True,
                                                                        "current": True}
    assert stored(path) is None


def test_history_pages_and_all(device):
    client, path = device
    failed = Client(key_file=client.key_file)
    with pytest.raises(CityloginError):
        failed.login("not the password")
    for _ in range(2):
        ok(run(path, "login"))
    deadline = time.monotonic() + 30  # history rows are written in the background
    while len(as_json(run(path, "history", "--json"))["items"]) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    page = ok(run(path, "history", "--limit", "2"))
    assert len(table_rows(page)) == 3 and "older attempts exist" in page  # two rows and the hint
    assert table_rows(page)[0].split()[2] == "success"  # date, time, result
    everything = as_json(run(path, "history", "--all", "--limit", "2", "--json"))
    assert everything["next_cursor"] is None and len(everything["items"]) == 4
    assert [i["result"] for i in everything["items"]].count("invalid_credentials") == 1
    first_page = as_json(run(path, "history", "--limit", "1", "--json"))
    assert len(first_page["items"]) == 1 and first_page["next_cursor"]


# --- pairing, renewal ---------------------------------------------------------------------------

def test_pair_request_on_the_stored_session_pairs_a_new_device(server, device, tmp_path):
    url, _ = server
    client, path = device
    pairing = as_json(run(path, "pair-request", "--json"))
    assert set(pairing) == {"qr_code", "expires_at", "expires_in"}
    new = tmp_path / "phone.json"
    paired = CliRunner().invoke(client_cli, ["pair", "--url", url, "--username", client.key_file.username,
                                             "--key-file", str(new), pairing["qr_code"]], env={PASSWORD_ENV: PASSWORD})
    assert paired.exit_code == 0, paired.output
    assert KeyFile.load(new).user_uuid == client.key_file.user_uuid
    human = ok(run(path, "pair-request"))
    assert "pairing link, the LINK of `citylogin client pair` on the new device (valid until" in human


def test_renew_keeps_the_session(device):
    _, path = device
    before = KeyFile.load(path)
    renewed = as_json(run(path, "renew", "--json"))
    after = KeyFile.load(path)
    assert renewed["fingerprint"] == after.fingerprint != before.fingerprint
    assert after.session["session_id"] == before.session["session_id"]
    ok(run(path, "whoami"))


def test_commands_without_a_key_file_say_where_they_looked(tmp_path):
    result = run(tmp_path / "missing.json", "whoami")
    assert result.exit_code == 1 and "no key file at" in result.output


# --- output helpers ---------------------------------------------------------------------------

def test_table_aligns_columns_counting_wide_characters():
    lines = table(("A", "NAME", "X"), [("1", "電話", "y"), ("22", "pc", None)]).splitlines()
    assert lines == ["A   NAME  X", "1   電話  y", "22  pc    -"]


def test_short_ids_grow_until_unambiguous():
    short = short_ids(["abcdefgh1111", "abcdefgh2222", "zzzzzzzzzzzz"])
    assert (short("abcdefgh1111"), short("zzzzzzzzzzzz"), short(None)) == ("abcdefgh1", "zzzzzzzz", "-")
    assert resolve_prefix("zzzz", ["abcd", "zzzzzz"], what="device") == "zzzzzz"
    assert resolve_prefix("nope", ["abcd"], what="device") == "nope"
    with pytest.raises(Exception, match="2 device ids"):
        resolve_prefix("abcdefgh", ["abcdefgh1111", "abcdefgh2222"], what="device")


def test_local_time_shows_the_local_zone():
    expected = datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M")
    assert (local_time("2030-01-02T03:04:05Z"), local_time(None)) == (expected, "-")
