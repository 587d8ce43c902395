"""A start under gunicorn that cannot work stops with one line naming the variable, not a worker
traceback (SPEC §9, §10): a wrong key-encryption key, and no CITYLOGIN_PUBLIC_URL, which only
`citylogin serve` can derive."""
from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from citylogin.cli.main import main
from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.support.ports import free_port
from tests.support.services import GUNICORN

ROOT = Path(__file__).resolve().parents[3]


def kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def ring_env(dynamodb_endpoint, tmp_path) -> dict[str, str]:
    """The environment of a deployment whose key ring exists (`citylogin init` ran)."""
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": tmp_path,
                      "table_prefix": unique_name("gs") + "_", "key_encryption_key": kek(),
                      "public_url": "https://login.example.org", "log_level": "WARNING", **FAST_ARGON2})
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    return env


SHIPPED = ("-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--threads", "4")  # its master checks first
PLAIN = ("--worker-class", "gthread", "--workers", "1")  # no config file: the worker says it


def gunicorn_start(env: dict[str, str], cwd: Path, options: tuple[str, ...] = SHIPPED) -> subprocess.CompletedProcess:
    """gunicorn with `options`; it must stop by itself."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    argv = [str(GUNICORN), *options, "-b", f"127.0.0.1:{free_port()}", "citylogin.app:create_app()"]
    return subprocess.run(argv, env={**full_env, **env}, cwd=cwd, capture_output=True, text=True, timeout=120)


def our_lines(stderr: str) -> list[str]:
    """What citylogin printed: every line but gunicorn's own log lines ("[time] [pid] [LEVEL] ...")."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]


@pytest.mark.parametrize("options", [SHIPPED, PLAIN], ids=["shipped-config", "plain"])
def test_a_wrong_key_encryption_key_is_one_line_naming_the_variable(ring_env, tmp_path, options):
    done = gunicorn_start({**ring_env, "CITYLOGIN_KEY_ENCRYPTION_KEY": kek()}, tmp_path, options)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = our_lines(done.stderr)
    assert len(lines) == 1 and "CITYLOGIN_KEY_ENCRYPTION_KEY does not decrypt" in lines[0], done.stderr


def test_without_a_public_url_gunicorn_stops_with_one_line(ring_env, tmp_path):
    env = {k: v for k, v in ring_env.items() if k != "CITYLOGIN_PUBLIC_URL"}
    done = gunicorn_start(env, tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = our_lines(done.stderr)
    assert len(lines) == 1 and "CITYLOGIN_PUBLIC_URL is required" in lines[0], done.stderr
