"""`citylogin client login` at the device limit, against the all-in-one app on DynamoDB Local: on a
terminal (a pseudo-terminal) it lists the devices that could go, numbered, and signs out the one the
person picks (Enter: the default; a fresh list when the pick ended meanwhile; c cancels); a script
without a terminal names its choice with --displace, and without one fails naming the choices."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from citylogin.client.api import Client, KeyFile
from citylogin.client.cli import PASSWORD_ENV
from citylogin.client.cli import client as client_cli
from tests.support.live import PASSWORD, add_device, register_device
from tests.support.terminal import Terminal, citylogin_on_a_terminal

pytestmark = pytest.mark.slow  # whole flows through the CLI, one of them in a process of its own per test

QUESTION = r"Which device should be signed out\? Enter for 1, a number, or c to cancel: "


@pytest.fixture
def full(make_server, tmp_path):
    """An account at its limit of two: `first` (logged in first: the default to go) and `second`, both
    logged in by the library; the key file of `third`, not logged in; and the server's context."""
    url, ctx = make_server(max_concurrent_devices=2)
    first = register_device(url)
    first.login(PASSWORD)
    second = add_device(ctx, first, name="phone", device_class="mobile")
    second.login(PASSWORD)
    path = tmp_path / "laptop.json"
    add_device(ctx, first, name="laptop", device_class="desktop").key_file.save(path)
    return first, second, path, ctx


def run(path: Path, *args: str):
    """`citylogin client login ARGS --key-file PATH` without a terminal (a script)."""
    result = CliRunner().invoke(client_cli, ["login", *args, "--key-file", str(path)], env={PASSWORD_ENV: PASSWORD})
    assert "Traceback" not in result.output and PASSWORD not in result.output, result.output
    return result


def on_a_terminal(path: Path) -> Terminal:
    """`citylogin client login --key-file PATH` in its own process, on a pseudo-terminal."""
    return citylogin_on_a_terminal("client", "login", "--key-file", str(path), env={PASSWORD_ENV: PASSWORD})


def displaced(client: Client) -> bool:
    answer = client.request("GET", "/session/me")
    if answer.status_code == 200:
        return False
    assert (answer.status_code, answer.json()["code"]) == (401, "session_revoked"), answer.text
    return answer.json()["reason"] == "displaced"


def logged_in(path: Path) -> Client:
    client = Client(key_file=KeyFile.load(path))
    client.use_tokens(KeyFile.load(path).session)
    assert client.me()["device_id"] == client.key_file.device_id
    return client


# --- on a terminal --------------------------------------------------------------------------------

def test_on_a_terminal_the_person_picks_the_device_that_goes_by_its_number(full):
    first, second, path, _ = full
    terminal = on_a_terminal(path)
    terminal.wait_for(QUESTION)
    listed = terminal.output
    assert re.search(r"^1\. +First device +desktop +.*\(default\)$", listed, re.MULTILINE), listed
    assert re.search(r"^2\. +phone +mobile +\S+ \S+ +\S+ \S+ +-$", listed, re.MULTILINE), listed
    terminal.type("2")
    terminal.wait_for(r"logged out: phone")
    assert terminal.finish() == 0, terminal.output
    assert displaced(second) and not displaced(first)
    logged_in(path)


def test_enter_takes_the_default_and_a_pick_that_ended_meanwhile_brings_the_new_list(full):
    first, second, path, ctx = full
    terminal = on_a_terminal(path)
    terminal.wait_for(QUESTION)
    second.logout()  # the phone leaves while the question is open, and a tablet takes its seat
    tablet = add_device(ctx, first, name="tablet")
    tablet.login(PASSWORD)
    terminal.type("2")
    terminal.wait_for(r"The devices in use changed meanwhile")
    terminal.wait_for(QUESTION)
    assert re.search(r"^2\. +tablet ", terminal.output, re.MULTILINE), terminal.output
    terminal.type("x")  # not an answer: asked again
    terminal.wait_for(r"Answer with a number from 1 to 2")
    terminal.type("")
    terminal.wait_for(r"logged out: First device")
    assert terminal.finish() == 0, terminal.output
    assert displaced(first) and not displaced(tablet)
    logged_in(path)


def test_cancelling_on_a_terminal_signs_no_one_out(full):
    first, second, path, _ = full
    terminal = on_a_terminal(path)
    terminal.wait_for(QUESTION)
    terminal.type("c")
    terminal.wait_for(r"cancelled; the other devices stay signed in")
    assert terminal.finish() == 1
    assert not displaced(first) and not displaced(second)
    assert KeyFile.load(path).session is None


# --- in a script ----------------------------------------------------------------------------------

def test_a_script_without_a_choice_fails_naming_the_choices_and_displace(full):
    first, second, path, _ = full
    result = run(path)
    assert result.exit_code == 1
    assert "--displace" in result.output and "--force" in result.output
    assert f"{first.session_id} 'First device' (default)" in result.output, result.output
    assert f"{second.session_id} 'phone'" in result.output
    error = json.loads(run(path, "--json").stderr)["error"]
    assert (error["code"], error["status"], error["needed"]) == ("concurrent_login", 409, 1)
    assert [(d["session_id"], d["default"]) for d in error["active_devices"]] == [
        (first.session_id, True), (second.session_id, False)]
    assert not displaced(first) and not displaced(second)
    assert KeyFile.load(path).session is None


def test_a_script_signs_out_the_device_it_names_with_displace(full):
    first, second, path, _ = full
    result = run(path, "--displace", second.session_id)
    assert result.exit_code == 0, result.output
    assert f"logged out: phone ({second.key_file.device_id})" in result.output
    assert displaced(second) and not displaced(first)
    logged_in(path)


def test_a_displace_that_names_no_listed_device_fails_and_changes_nothing(full):
    first, second, path, _ = full
    result = run(path, "--displace", "0" * 32)
    assert result.exit_code == 1
    assert "those devices cannot be signed out for this login" in result.output, result.output
    assert json.loads(run(path, "--displace", "0" * 32, "--json").stderr)["error"]["code"] == "invalid_field"
    assert not displaced(first) and not displaced(second)
    assert KeyFile.load(path).session is None


def test_force_still_signs_out_the_default_one(full):
    first, second, path, _ = full
    assert run(path, "--force").exit_code == 0
    assert displaced(first) and not displaced(second)
