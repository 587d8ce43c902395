"""The mail an operator's command sends (`citylogin admin`) is the brand's too: the command reads
CITYLOGIN_BRAND_NAME (or the folder) as the services do, and its message says the brand's name and
comes from it."""
from __future__ import annotations

import base64
import logging
import os

from click.testing import CliRunner

from citylogin.cli import main
from common import i18n
from tests.support.fixtures import cli_environment
from tests.support.live import register_device


def test_an_operators_command_sends_the_brands_mail(make_server, base_config, tmp_path, caplog):
    kek = base64.b64encode(os.urandom(32)).decode()
    url, _ = make_server(key_encryption_key=kek)
    person = register_device(url)
    env = {**cli_environment(base_config, kek=kek, data_dir=str(tmp_path)), "CITYLOGIN_BRAND_NAME": "Acme ID"}
    with caplog.at_level(logging.INFO, logger="citylogin.notify"):
        result = CliRunner().invoke(main, ["admin", "lock", person.key_file.username, "--reason", "ticket 7"], env=env)
    assert result.exit_code == 0, result.output
    assert "From: Acme ID\nSubject: An operator of Acme ID changed your account\n" in caplog.text, caplog.text
    assert i18n.text("mail.operator_action.subject", "en") == "An operator of citylogin changed your account"
