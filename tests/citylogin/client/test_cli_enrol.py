"""`citylogin client enrol` end to end (SPEC §17): a `citylogin serve` process, an imported account with no
device put straight into its tables, and the CLI as its own process: it asks for the code (mailed: here the
console mail in the server's log), reads it and the password without echo, and keeps the key and the
certificate in its key file, with which the device then logs in."""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.client.api import Client, KeyFile
from citylogin.client.cli import PASSWORD_ENV
from common.config import load_settings
from common.runtime.context import build_context
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.flows.test_device_enrol import imported_account
from tests.support.live import PASSWORD
from tests.support.services import running_service

pytestmark = pytest.mark.slow

MAILED_CODE = re.compile(r"Subject: Your code for a first device: (\d{6})")


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory):
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("enrol") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "INFO",
                         **FAST_ARGON2, **RAISED_LIMITS}),
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with running_service("citylogin", env, args=("serve",), log_path=log) as url:
        yield url, build_context(load_settings(environ=env)), log


def mailed_code(log: Path, *, to: str, timeout: float = 60.0) -> str:
    """The code of the newest first-device mail to `to` in the server's log, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        mails = [m for m in text.split("notify ")[1:] if m.startswith("enrol_code") and f"to={to}" in m]
        if mails and (found := MAILED_CODE.search(mails[-1])):
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError("no enrol_code mail in the server's log")


def test_the_cli_asks_the_mailed_code_and_keeps_the_first_devices_key(deployment, tmp_path):
    url, ctx, log = deployment
    account = imported_account(ctx)
    key_path = tmp_path / "device.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update({PASSWORD_ENV: PASSWORD, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    cli = subprocess.Popen([sys.executable, "-m", "citylogin", "client", "enrol", "--url", url, "--username",
                            account.username, "--key-file", str(key_path), "--device-name", "terminal"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    code = mailed_code(log, to=account.email)
    out, err = cli.communicate(code + "\n", timeout=120)
    assert cli.returncode == 0, (out, err)
    assert code not in out + err and PASSWORD not in out + err
    key_file = KeyFile.load(key_path)
    assert (key_file.username, key_file.user_uuid, key_file.device_name) == (account.username, account.user_uuid,
                                                                             "terminal")
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert Client(key_file=key_file).login(PASSWORD)["device_id"] == key_file.device_id

    again = subprocess.run([sys.executable, "-m", "citylogin", "client", "enrol", "--url", url, "--username",
                            account.username, "--key-file", str(tmp_path / "again.json")],
                           input=code + "\n", capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 1 and "device_exists" in again.stdout + again.stderr


def test_an_address_in_the_usernames_place_asks_the_username_the_mail_gives(deployment, tmp_path):
    url, ctx, log = deployment
    account = imported_account(ctx)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update({PASSWORD_ENV: PASSWORD, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    cli = subprocess.Popen([sys.executable, "-m", "citylogin", "client", "enrol", "--url", url, "--username",
                            account.email, "--key-file", str(tmp_path / "device.json")],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    code = mailed_code(log, to=account.email)
    out, err = cli.communicate(f"{account.username}\n{code}\n", timeout=120)
    assert cli.returncode == 0, (out, err)
    assert "Your username (the e-mail says it)" in err
    assert KeyFile.load(tmp_path / "device.json").user_uuid == account.user_uuid
