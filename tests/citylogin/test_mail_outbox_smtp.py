"""Nothing lost, nothing sent twice (issue 65 item 2, "SMTP down"): two citylogin apps on one set of
tables (two hosts, each with its mail sender) send over SMTP to a real server in its own process
(aiosmtpd). The server stops; a first sign-in's "Wasn't you?" notice and a reset link are asked for
while it is down, kept down past the retry window of the first tries (three attempts, about 1.5 s) and
through more tries of the senders; started again, every mail arrives once, and the link in the mail works."""
from __future__ import annotations

import re

import requests

from citylogin.client.api import Client
from common.mail.outbox_store import SENT, OutboxStore
from tests.conftest import unique_name
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.smtp_server import smtp_server, text_of
from tests.support.waiting import wait_until

RESET = re.compile(r"/#reset=([A-Za-z0-9_-]+)")
NEW_PASSWORD = "a new passphrase after the outage"


def subjects_to(server, address: str) -> list[str]:
    return sorted(str(mail["Subject"]) for mail, _ in server.messages() if mail["To"] == address)


def test_mail_asked_for_while_the_smtp_server_is_down_arrives_once_when_it_is_back(make_server, tmp_path):
    port, folder = free_port(), tmp_path / "smtp"
    settings = {"notifier": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
                "smtp_sender": "Example ID <id@example.com>", "notify_timeout": 5,
                # the senders look often and back off from half a second, so the test takes seconds, not minutes
                "mail_send_interval": 0.2, "mail_retry_seconds": 0.5, "mail_retry_max_seconds": 2}
    url, ctx = make_server(**settings)
    other_url, _ = make_server(**settings)  # another host on the same tables, with a sender of its own
    name = unique_name()
    address = f"{name}@example.org"
    person = Client(url)
    with smtp_server(folder, port=port) as server:
        person.register(username=name, email=address, password=PASSWORD)
        wait_until(lambda: len(subjects_to(server, address)) == 2, timeout=60, what="the registration's two mails")
    user_uuid = person.require_key_file().user_uuid
    outbox = OutboxStore(ctx.dynamodb, ctx.tables.mail_outbox)

    # The server is down: a first sign-in (on the other host) and a reset link are asked for.
    Client(other_url, key_file=person.require_key_file()).login(PASSWORD)
    assert requests.post(url + "/account/password_reset", json={"email": address}, timeout=30).status_code == 202

    def tried_again() -> bool:
        waiting = [i for i in outbox.items_of_user(user_uuid) if i["event"] in ("new_sign_in", "password_reset")]
        return len(waiting) == 2 and all(i["state"] != SENT and int(i["attempts"]) >= 3 for i in waiting)
    # Each failed its first try (three attempts) and then at least two of the senders' tries.
    wait_until(tried_again, timeout=120, what="both mails tried again while the server is down")

    with smtp_server(folder, port=port) as server:  # back, on the same port and mailbox
        wait_until(lambda: all(i["state"] == SENT for i in outbox.items_of_user(user_uuid))
                   and len(outbox.items_of_user(user_uuid)) == 4, timeout=120, what="every mail sent")
        received = subjects_to(server, address)
        mails = {str(mail["Subject"]): mail for mail, _ in server.messages() if mail["To"] == address}
        assert all("sealed" not in i for i in outbox.items_of_user(user_uuid))  # sent: nothing left to read
    assert received == sorted(["Welcome to citylogin", "Confirm your e-mail address", "New sign-in to your account",
                               "Reset your password"]), received  # each once
    token = RESET.search(text_of(mails["Reset your password"])).group(1)
    Client(url).confirm_password_reset(token=token, new_password=NEW_PASSWORD)
