"""examples/tv_cli end to end (SPEC §14, devices without a keyboard or a browser): `citylogin serve` and
the command-line app in its own process, registered by `citylogin apps add --device-flow --public` as its
README says. The app prints a user code and a QR code of the link that carries it; a person approves the
code on a device already signed in (citylogin's JSON API, as the /device page calls it) and the app,
polling at citylogin's interval, prints who signed in. A denied code ends it with its own exit status.
It never prints the device code or a token."""
from __future__ import annotations

import base64
import io
import os
import re
import sys
from pathlib import Path
from typing import Iterator

import pytest
import qrcode
from click.testing import CliRunner

from citylogin.cli.main import main
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.device_screen import LONG_SECRET, USER_CODE, Screen, approve, deny
from tests.support.live import PASSWORD, register_device
from tests.support.notes import add_app
from tests.support.services import running_service

TV_APP = Path(__file__).resolve().parents[2] / "examples" / "tv_cli" / "tv_sign_in.py"
OPENS = re.compile(r"it opens (\S+)\):\n\n(.*?)\n\nWaiting", re.DOTALL)


@pytest.fixture(scope="module")
def citylogin(dynamodb_endpoint, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("tv") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                         **FAST_ARGON2, **RAISED_LIMITS,
                         # the phone that approves and the TV: two seats
                         "max_concurrent_devices": 2,
                         "device_poll_interval": 1}),     # the app polls every second, not every 5
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    initialized = CliRunner().invoke(main, ["init"], env=env)
    assert initialized.exit_code == 0, initialized.output
    apps = {"public": add_app(env, "TV app", options=("--device-flow", "--public")),   # as the README has it
            "confidential": add_app(env, "Console app", options=("--device-flow",)),
            "web": add_app(env, "Web app", redirect_uris=("https://web.example/callback",))}
    with running_service("citylogin", env, args=("serve",)) as url:
        yield url, apps


def start_app(url: str, client_id: str, **settings: str) -> Screen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | settings
    return Screen([sys.executable, str(TV_APP), "--issuer", url, "--client-id", client_id], env=env)


def test_the_app_shows_a_code_and_a_qr_code_and_signs_the_approving_person_in(citylogin):
    url, apps = citylogin
    phone = register_device(url)
    phone.login(PASSWORD)
    screen = start_app(url, apps["public"]["client_id"], SCOPE="openid profile offline_access")
    try:
        code = screen.wait_for(USER_CODE).group(1)
        shown = screen.wait_for(OPENS)
        assert f"{url}/device" in screen.stdout
        # The QR code is the link with the code in it, drawn as qrcode draws it
        assert shown.group(1) == f"{url}/device?user_code={code}"
        drawn = io.StringIO()
        expected = qrcode.QRCode(border=2)
        expected.add_data(shown.group(1))
        expected.print_ascii(out=drawn, invert=True)
        assert shown.group(2) == drawn.getvalue().rstrip("\n")

        approved = approve(phone, code.lower().replace("-", " "))   # typed as a person types it
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "approved"
        done = screen.finish()
    finally:
        screen.close()
    assert done.status == 0, done.stderr
    assert done.stdout.rstrip().endswith(
        f"Signed in as {phone.key_file.username} (sub {phone.key_file.user_uuid})"), done.stdout
    assert not LONG_SECRET.search(done.stdout + done.stderr), done.stdout + done.stderr


def test_a_denied_code_ends_the_app_with_its_message_and_status(citylogin, tmp_path):
    """A confidential app this time: its secret from a file, as the README has it."""
    url, apps = citylogin
    secret = tmp_path / "secret"
    secret.write_text(apps["confidential"]["client_secret"])
    screen = start_app(url, apps["confidential"]["client_id"], CLIENT_SECRET_FILE=str(secret))
    try:
        code = screen.wait_for(USER_CODE).group(1)
        denied = deny(url, code)
        assert denied.status_code == 200 and denied.json() == {"status": "denied"}, denied.text
        done = screen.finish()
    finally:
        screen.close()
    assert done.status == 3, (done.stdout, done.stderr)
    assert "The sign-in was denied on the approving device." in done.stderr
    assert "Signed in" not in done.stdout
    assert not LONG_SECRET.search(done.stdout + done.stderr)


def test_an_app_not_allowed_the_grant_is_told_so(citylogin):
    """An app added without --device-flow: citylogin refuses to start (unauthorized_client), status 1."""
    url, apps = citylogin
    screen = start_app(url, apps["web"]["client_id"], CLIENT_SECRET=apps["web"]["client_secret"])
    try:
        done = screen.finish()
    finally:
        screen.close()
    assert done.status == 1, (done.stdout, done.stderr)
    assert "citylogin refused to start: unauthorized_client" in done.stderr
    assert not USER_CODE.search(done.stdout)
