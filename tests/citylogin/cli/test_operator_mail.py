"""An operator command's mail reaches the person (issue 65 item 1): `citylogin admin password-reset` and
`lock`, run as a subprocess from another folder in a shell with none of the service's mail settings (no
notifier, no public URL, no brand), only write the mail to the outbox; the running `citylogin serve` (its
notifier smtp, to a real SMTP server in its own process) sends it under its brand, with a link to its
own address that works. Neither command's output holds the link or its token. With no service running,
the command says the mail waits in the outbox, and the service sends it once it is started."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from contextlib import contextmanager
from email.utils import parseaddr
from pathlib import Path
from typing import Iterator

import requests

from citylogin.client.api import Client
from tests.citylogin.server.test_commands_find_serve import citylogin, environment
from tests.conftest import unique_name
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.smtp_server import smtp_server, text_of
from tests.support.waiting import wait_until

LINK = re.compile(r"(http://\S+)/#reset=([A-Za-z0-9_-]+)")


@contextmanager
def serving(folder: Path, runtime: Path, port: int, **settings: str) -> Iterator[str]:
    """`citylogin serve --port PORT` in `folder` with the service's own `settings`; its URL once ready."""
    log_path = folder.parent / f"serve-{port}.log"
    with open(log_path, "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "citylogin", "serve", "--port", str(port)], cwd=folder,
                                   env=environment(runtime, **settings), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log)
        try:
            deadline = time.monotonic() + 120  # DynamoDB Local alone may take 30 s on a loaded machine
            while True:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                try:
                    if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=60)


def mails_to(server, address: str, count: int) -> list:
    def arrived():
        found = [mail for mail, _ in server.messages() if mail["To"] == address]
        return found if len(found) >= count else None
    return wait_until(arrived, timeout=60, what=f"{count} mails to {address}")


def test_operator_commands_write_the_mail_and_the_running_service_sends_it_under_its_brand(tmp_path):
    runtime, service, ops = tmp_path / "runtime", tmp_path / "service", tmp_path / "ops"
    service.mkdir()
    ops.mkdir()
    port, name = free_port(), unique_name()
    address = f"{name}@example.org"
    with smtp_server(tmp_path / "smtp") as mailbox:
        mail = {"CITYLOGIN_NOTIFIER": "smtp", "CITYLOGIN_SMTP_HOST": "127.0.0.1",
                "CITYLOGIN_SMTP_PORT": str(mailbox.port), "CITYLOGIN_SMTP_SECURITY": "none",
                "CITYLOGIN_SMTP_SENDER": "id@example.com",
                "CITYLOGIN_BRAND_NAME": "Acme ID", "CITYLOGIN_MAIL_SEND_INTERVAL": "0.2"}
        with serving(service, runtime, port, **mail) as url:
            Client(url).register(username=name, email=address, password=PASSWORD)
            mails_to(mailbox, address, 2)  # welcome, verification

            # From a folder of its own, the operator names the service (an operator command never acts on one by chance)
            done = citylogin(ops, runtime, "admin", "password-reset", name, "--reason", "asked on the phone",
                             "--service", f"http://localhost:{port}")  # as `serve` records itself
            assert done.returncode == 0, done.stderr
            [reset] = [m for m in mails_to(mailbox, address, 3) if "password reset" in str(m["Subject"])]
            assert "Acme ID" in str(reset["Subject"]), reset["Subject"]  # the service's brand, not the shell's
            assert parseaddr(str(reset["From"])) == ("Acme ID", "id@example.com")
            base, token = LINK.search(text_of(reset)).groups()
            assert base == f"http://localhost:{port}"  # the service's own address, not the shell's (none)
            output = done.stdout + done.stderr
            assert token not in output and "#reset=" not in output and "Traceback" not in output, output
            assert "the running citylogin sends it" in done.stderr, done.stderr
            Client(url).confirm_password_reset(token=token, new_password="a new passphrase from the link")

            locked = citylogin(ops, runtime, "admin", "lock", name, "--reason", "stolen laptop",
                               "--service", f"http://localhost:{port}")
            assert locked.returncode == 0, locked.stderr
            told = [m for m in mails_to(mailbox, address, 5) if "changed your account" in str(m["Subject"])]
            assert len(told) == 1 and "Acme ID" in str(told[0]["Subject"]) and "From: " not in locked.stdout

        # No service runs: the command (in the service's folder, on its data) leaves the mail in the outbox.
        unlocked = citylogin(service, runtime, "admin", "unlock", name, "--reason", "laptop found")
        assert unlocked.returncode == 0, unlocked.stderr
        assert "waits in the outbox: no citylogin serve runs" in unlocked.stderr, unlocked.stderr
        before = len([m for m, _ in mailbox.messages() if m["To"] == address])
        with serving(service, runtime, port, **mail):
            arrived = mails_to(mailbox, address, before + 1)
        assert len(arrived) == before + 1 and "Acme ID" in str(arrived[-1]["Subject"])


def test_mail_list_shows_the_mail_waiting_to_go_of_the_serve_named_by_the_address_gunicorn_printed(tmp_path):
    """Issue 83 items 5 and 6: while the mail server refuses connections, `citylogin mail list` run from another
    folder, naming the service as http://127.0.0.1:PORT (it announced http://localhost:PORT), lists the mails
    waiting to go (since when, tries, next try, last error) and says none was given up; never an address."""
    runtime, service, ops = tmp_path / "runtime", tmp_path / "service", tmp_path / "ops"
    service.mkdir()
    ops.mkdir()
    port, name = free_port(), unique_name()
    address = f"{name}@example.org"
    refused = {"CITYLOGIN_NOTIFIER": "smtp", "CITYLOGIN_SMTP_HOST": "127.0.0.1",
               "CITYLOGIN_SMTP_PORT": str(free_port()), "CITYLOGIN_SMTP_SECURITY": "none",
               "CITYLOGIN_SMTP_SENDER": "id@example.com",
               "CITYLOGIN_NOTIFY_ATTEMPTS": "1", "CITYLOGIN_MAIL_RETRY_SECONDS": "3600"}
    with serving(service, runtime, port, **refused) as url:
        user_uuid = Client(url).register(username=name, email=address, password=PASSWORD).user_uuid

        def tried_once():
            done = citylogin(ops, runtime, "mail", "list", "--service", f"http://127.0.0.1:{port}")
            assert done.returncode == 0, done.stderr
            mine = [line for line in done.stdout.splitlines() if f"user {user_uuid}" in line]
            return done.stdout if len(mine) == 2 and all("  1 try  next try " in line for line in mine) else None
        listed = wait_until(tried_once, timeout=120, what="the person's two mails tried once")
    mine = [line.split() for line in listed.splitlines() if f"user {user_uuid}" in line]
    assert sorted(words[2] for words in mine) == ["registered", "verify_email"], listed
    assert all(words[0] == "waiting" and words[5] == "since" and "ConnectionRefusedError" in words for words in mine), \
        listed
    assert "no undelivered mail" in listed and address not in listed and "#verify=" not in listed, listed
