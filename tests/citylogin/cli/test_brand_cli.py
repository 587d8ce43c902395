"""The mail an operator's command sends (`citylogin admin`) is the brand's too: the command reads
CITYLOGIN_BRAND_NAME (or the folder) as the services do, and its message says the brand's name and
comes from it."""
from __future__ import annotations

import base64
import logging
import os

from click.testing import CliRunner

from citylogin.cli.main import main
from common import i18n
from common.mail.sender import MailSender
from tests.support.fixtures import cli_environment
from tests.support.live import register_device


def test_an_operators_command_writes_the_mail_that_the_service_sends_in_its_brand(make_server, base_config,
                                                                                   tmp_path, caplog):
    """The command's shell names no brand and prints nothing of the mail (issue 65 item 1): the running
    service, whose brand is Acme ID, renders and sends what the command wrote to the outbox."""
    kek = base64.b64encode(os.urandom(32)).decode()
    url, ctx = make_server(key_encryption_key=kek, brand_name="Acme ID")
    person = register_device(url)
    env = cli_environment(base_config, kek=kek, data_dir=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="citylogin.notify"):
        result = CliRunner().invoke(main, ["admin", "lock", person.key_file.username, "--reason", "ticket 7"], env=env)
        assert result.exit_code == 0, result.output
        assert "Subject:" not in caplog.text and "Subject:" not in result.output  # written, not sent, here
        assert MailSender(ctx.notifier, interval=1).turn() >= 1  # the service's sender
    assert "From: Acme ID\nSubject: An operator of Acme ID changed your account\n" in caplog.text, caplog.text
    assert i18n.text("mail.operator_action.subject", "en") == "An operator of citylogin changed your account"
