"""CITYLOGIN_DYNAMODB_LOCAL_PORT (issue 65): the DynamoDB Local of `citylogin serve` listens on the port it
names (a free one when unset), `citylogin dynamodb-local` takes it as its default, and a port another program
holds stops the start with one line naming the setting, before any Java process starts."""
from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.cli.database import database
from common.config import load_settings
from common.version import running_version
from tests.support.ports import free_port

SETTING = "CITYLOGIN_DYNAMODB_LOCAL_PORT"


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on (on loopback only: DynamoDB Local would listen on every interface)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict:
    for name in [n for n in os.environ if n.startswith("CITYLOGIN_")]:
        monkeypatch.delenv(name)
    return {"CITYLOGIN_DATA_DIR": str(tmp_path / ".data"), "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
            "CITYLOGIN_LOG_LEVEL": "WARNING"}


def refusal(result) -> str:
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    if lines and lines[0] == f"citylogin {running_version()} starting":  # serve's first line: which version
        lines = lines[1:]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["serve"], ["dynamodb-local"]])
def test_a_port_in_use_is_one_line_naming_the_setting(env, held_port, command):
    result = CliRunner().invoke(main, command, env={**env, SETTING: str(held_port)})
    line = refusal(result)
    assert f"port {held_port} ({SETTING})" in line and "another program uses it" in line, line


def test_dynamodb_local_s_own_port_option_comes_first_and_is_named(env, held_port):
    result = CliRunner().invoke(main, ["dynamodb-local", "--port", str(held_port)], env={**env, SETTING: "1"})
    line = refusal(result)
    assert f"port {held_port} (--port)" in line, line


@pytest.mark.parametrize("value", ["0", "65536", "eight thousand"])
def test_a_port_that_is_no_port_is_refused_as_a_setting(env, value):
    result = CliRunner().invoke(main, ["dynamodb-local"], env={**env, SETTING: value})
    assert refusal(result).startswith(f"Error: invalid configuration: {SETTING}: "), result.stderr


@pytest.mark.slow
def test_serve_s_dynamodb_local_listens_on_the_port_set(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("CITYLOGIN_DATA_DIR", str(tmp_path / ".data"))
    monkeypatch.setenv(SETTING, str(port))
    settings = load_settings()
    with database(settings) as overrides:
        assert overrides["dynamodb_endpoint_url"] == f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError):          # DynamoDB answers a bare GET with 400
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=30)
    monkeypatch.delenv(SETTING)
    with database(load_settings()) as overrides:          # unset: a free port, as before
        assert overrides["dynamodb_endpoint_url"] != f"http://127.0.0.1:{port}"
