"""`citylogin client` against the all-in-one app on DynamoDB Local: the recovery codes of a
registration, recover, renew, the account commands (on the session `login` keeps in the key file)
and the password reset (SPEC §4)."""
from __future__ import annotations

import copy
import json
import re
import time

import pytest
from click.testing import CliRunner

from citylogin.client.api import CityloginError, Client, KeyFile
from citylogin.client.cli import client as client_cli
from citylogin.client.cli import PASSWORD_ENV
from tests.conftest import unique_name
from tests.support.live import PASSWORD, add_device, register_device

NEW_PASSWORD = "a brand new long passphrase"
CODE = re.compile(r"^  (\S+)$", re.MULTILINE)


class Recorder:
    """A notifier backend that keeps the messages; some are sent from a background thread."""

    def __init__(self) -> None:
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)

    def link(self, event: str, fragment: str, *, email: str | None = None, timeout: float = 30.0) -> str:
        """The whole link (`<public URL>/#<fragment>=<token>`) of the newest `event` message (to `email`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if m.event == event and email in (None, m.email)]
            if found:
                return re.search(rf"\S+/#{fragment}=[A-Za-z0-9_-]+", found[-1].body).group(0)
            time.sleep(0.05)
        raise AssertionError(f"no {event} message: {[m.event for m in self.messages]}")


@pytest.fixture
def server(make_server):
    url, ctx = make_server(max_concurrent_devices=0)
    ctx.settings = ctx.settings.model_copy(update={"public_url": url})  # links lead to this server
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


def run(*args: str, input: str | None = None, password: str = PASSWORD):
    """The command's result; no secret that went in may come out."""
    result = CliRunner().invoke(client_cli, list(args), env={PASSWORD_ENV: password}, input=input)
    assert password not in result.output and NEW_PASSWORD not in result.output
    assert "Traceback" not in result.output, result.output
    return result


def saved_device(url: str, tmp_path, name: str = "device.json"):
    client = register_device(url)
    path = tmp_path / name
    client.key_file.save(path)
    return client, path


def cli_login(path, password: str = PASSWORD) -> None:
    result = run("login", "--key-file", str(path), password=password)
    assert result.exit_code == 0, result.output


def logged_in_device(url: str, tmp_path):
    """A device saved to a key file and logged in through the CLI (the session kept in the file)."""
    client, path = saved_device(url, tmp_path)
    cli_login(path)
    return client, path


def logs_in(key_file: KeyFile, password: str = PASSWORD) -> bool:
    try:
        Client(key_file=key_file, auto_renew=False).login(password)
    except CityloginError:
        return False
    return True


def register(url: str, path) -> tuple[str, list[str]]:
    name = unique_name()
    result = run("register", "--url", url, "--username", name, "--email", f"{name}@example.com",
                 "--key-file", str(path))
    assert result.exit_code == 0, result.output
    return name, CODE.findall(result.output)


# --- registration, recovery, renewal ----------------------------------------------------------

def test_register_prints_the_ten_recovery_codes(server, tmp_path):
    url, _, _ = server
    path = tmp_path / "device.json"
    name = unique_name()
    result = run("register", "--url", url, "--username", name, "--email", f"{name}@example.com",
                 "--key-file", str(path))
    assert result.exit_code == 0, result.output
    codes = CODE.findall(result.output)
    assert len(set(codes)) == 10 and all(re.fullmatch(r"[a-z0-9]{4}(-[a-z0-9]{4})+", c) for c in codes)
    assert "Store them safely" in result.output
    assert KeyFile.load(path).fingerprint in result.output


def test_recover_from_a_fresh_key_file_once_per_code(server, tmp_path):
    url, _, _ = server
    lost = tmp_path / "lost.json"
    name, codes = register(url, lost)
    found = tmp_path / "found.json"
    args = ("recover", "--url", url, "--username", name, "--device-name", "found", "--unbind-others")
    result = run(*args, "--key-file", str(found), input=codes[0] + "\n")
    assert result.exit_code == 0, result.output
    assert codes[0] not in result.output  # typed at a hidden prompt, never shown
    recovered = KeyFile.load(found)
    assert (recovered.username, recovered.device_name) == (name, "found")
    assert recovered.device_id != KeyFile.load(lost).device_id
    assert logs_in(recovered) and not logs_in(KeyFile.load(lost))  # the lost device was unbound

    again = run(*args, "--key-file", str(tmp_path / "again.json"), input=codes[0] + "\n")
    assert again.exit_code == 1 and "invalid_recovery_code" in again.output
    assert len(again.output.strip().splitlines()) == 2  # the prompt, then the one-line error
    assert not (tmp_path / "again.json").exists()


def test_renew_replaces_the_certificate_in_the_key_file(server, tmp_path):
    url, _, _ = server
    _, path = logged_in_device(url, tmp_path)
    old = KeyFile.load(path)
    result = run("renew", "--key-file", str(path))
    assert result.exit_code == 0, result.output
    same_key = KeyFile.load(path)
    assert same_key.fingerprint != old.fingerprint and same_key.fingerprint in result.output
    assert same_key.private_key_pem == old.private_key_pem and same_key.device_id == old.device_id
    assert not logs_in(old) and logs_in(same_key)  # that login ended the CLI's session: log in again

    cli_login(path)
    assert run("renew", "--new-key", "--key-file", str(path)).exit_code == 0
    moved = KeyFile.load(path)
    assert moved.private_key_pem != old.private_key_pem and moved.fingerprint != same_key.fingerprint
    assert not logs_in(same_key) and logs_in(moved)


# --- the account ------------------------------------------------------------------------------

def test_account_show_prints_the_account(server, tmp_path):
    url, _, _ = server
    client, path = logged_in_device(url, tmp_path)
    result = run("account", "show", "--json", "--key-file", str(path))
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["username"] == client.key_file.username
    assert shown["recovery_codes_left"] == 10 and shown["email_verified"] is False
    human = run("account", "show", "--key-file", str(path))
    assert human.exit_code == 0, human.output
    assert re.search(rf"^username: +{client.key_file.username}$", human.output, re.MULTILINE)
    assert re.search(r"^recovery codes left: +10$", human.output, re.MULTILINE) and "not verified" in human.output


def test_account_password_changes_it_and_ends_the_other_sessions(server, tmp_path):
    url, ctx, _ = server
    first, path = logged_in_device(url, tmp_path)
    second = add_device(ctx, first, name="tablet")
    second.login(PASSWORD)
    result = run("account", "password", "--key-file", str(path), input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert second.request("GET", "/session/me").json()["reason"] == "password_changed"
    assert logs_in(first.key_file, NEW_PASSWORD) and not logs_in(first.key_file, PASSWORD)

    second.login(NEW_PASSWORD)
    cli_login(path, NEW_PASSWORD)  # logs_in() above logged this device in again, ending the CLI's session
    kept = run("account", "password", "--keep-other-sessions", "--key-file", str(path),
               input=f"{PASSWORD}\n{PASSWORD}\n", password=NEW_PASSWORD)
    assert kept.exit_code == 0, kept.output
    assert second.request("GET", "/session/me").status_code == 200
    assert logs_in(first.key_file, PASSWORD)


def test_a_wrong_password_is_one_line_with_the_code(server, tmp_path):
    url, _, _ = server
    _, path = saved_device(url, tmp_path)
    result = run("login", "--key-file", str(path), password="not the password")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()] and "invalid_credentials" in result.output


def test_account_email_then_verify_with_the_token_of_the_message(server, tmp_path):
    url, _, recorder = server
    client, path = logged_in_device(url, tmp_path)
    new_email = f"new-{client.key_file.username}@example.com"
    changed = run("account", "email", "--key-file", str(path), new_email)
    assert changed.exit_code == 0, changed.output
    token = recorder.link("verify_email", "verify", email=new_email).rpartition("=")[2]
    verified = run("account", "verify", "--url", url, token)
    assert verified.exit_code == 0 and token not in verified.output, verified.output
    client.login(PASSWORD)
    assert client.account()["email"] == new_email
    used = run("account", "verify", "--url", url, "--", token)  # "--" still ends the options
    assert used.exit_code == 1 and "invalid_verification_token" in used.output


def test_resend_verification_sends_a_link_that_verifies(server, tmp_path):
    url, _, recorder = server
    client, path = logged_in_device(url, tmp_path)
    recorder.messages.clear()
    result = run("account", "resend-verification", "--key-file", str(path))
    assert result.exit_code == 0, result.output
    link = recorder.link("verify_email", "verify")
    assert run("account", "verify", input=link + "\n").exit_code == 0  # the whole link, at the prompt
    client.login(PASSWORD)
    assert client.account()["email_verified"] is True


def test_recovery_codes_prints_ten_new_ones(server, tmp_path):
    url, _, _ = server
    path = tmp_path / "device.json"
    name, old_codes = register(url, path)
    cli_login(path)
    result = run("account", "recovery-codes", "--key-file", str(path))
    assert result.exit_code == 0, result.output
    codes = CODE.findall(result.output)
    assert len(set(codes)) == 10 and not set(codes) & set(old_codes)
    stale = run("recover", "--url", url, "--username", name, "--key-file", str(tmp_path / "r.json"),
                input=old_codes[0] + "\n")
    assert stale.exit_code == 1 and "invalid_recovery_code" in stale.output


def test_account_locale(server, tmp_path):
    url, _, _ = server
    client, path = logged_in_device(url, tmp_path)
    assert run("account", "locale", "--key-file", str(path), "ja").exit_code == 0
    assert run("account", "locale", "--key-file", str(path), "fr").exit_code == 2
    client.login(PASSWORD)
    assert client.account()["locale"] == "ja"


def test_account_delete_asks_for_the_username_then_removes_the_account_and_key_file(server, tmp_path):
    url, _, _ = server
    client, path = logged_in_device(url, tmp_path)
    cancelled = run("account", "delete", "--key-file", str(path), input="someone else\n")
    assert cancelled.exit_code == 1 and "cancelled" in cancelled.output
    assert path.exists() and run("whoami", "--key-file", str(path)).exit_code == 0

    result = run("account", "delete", "--key-file", str(path), input=client.key_file.username + "\n")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and not path.exists()
    with pytest.raises(CityloginError) as refused:
        Client(key_file=client.key_file).login(PASSWORD)
    assert refused.value.code == "invalid_credentials"


# --- password reset ---------------------------------------------------------------------------

def test_password_reset_prints_the_same_message_for_any_address(server, tmp_path):
    url, _, recorder = server
    client, path = saved_device(url, tmp_path)
    known = run("password-reset", "--url", url, f"{client.key_file.username}@example.com")
    unknown = run("password-reset", "--url", url, f"nobody-{client.key_file.username}@example.com")
    assert known.exit_code == unknown.exit_code == 0 and known.output == unknown.output
    assert "If an account has this address" in known.output

    link = recorder.link("password_reset", "reset")
    result = run("password-reset-confirm", link, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert logs_in(KeyFile.load(path), NEW_PASSWORD) and not logs_in(KeyFile.load(path), PASSWORD)
    token = link.rpartition("=")[2]
    used = run("password-reset-confirm", "--url", url, token, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert used.exit_code == 1 and "invalid_reset_token" in used.output and token not in used.output


@pytest.mark.parametrize("command, code", [(("password-reset-confirm",), "invalid_reset_token"),
                                           (("account", "verify"), "invalid_verification_token")])
def test_a_bare_token_that_begins_with_a_dash_is_the_token_not_an_option(server, command, code):
    # A token is base64url: one in 64 begins with "-". Click took it for an unknown option (exit 2).
    url, _, _ = server
    token = "-" + "A" * 42
    result = run(*command, "--url", url, token, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 1 and code in result.output and token not in result.output, result.output


def test_a_login_through_the_cli_renews_a_certificate_near_its_end(make_server, tmp_path):
    url, ctx = make_server(cert_validity_days=10)
    _, path = saved_device(url, tmp_path)
    ctx.settings = ctx.settings.model_copy(update={"cert_validity_days": 365})
    old = copy.deepcopy(KeyFile.load(path))
    result = run("login", "--key-file", str(path))
    assert result.exit_code == 0 and "certificate renewed" in result.output, result.output
    assert KeyFile.load(path).fingerprint != old.fingerprint and not logs_in(old)
