"""The service sends its mail over SMTP (issue 54 item 1): citylogin with CITYLOGIN_NOTIFIER=smtp,
a real SMTP server in its own process (aiosmtpd) behind STARTTLS and AUTH. A registration's mails
arrive in the account's language, and the link in the mail that arrived verifies the address; with
the server hanging, the registration answers while the mail still waits, and the failure is logged
once without the address or the link."""
from __future__ import annotations

import email.utils
import logging
import re
import socket

import pytest
import requests

from citylogin.client.api import Client
from tests.conftest import unique_name
from tests.support.live import PASSWORD, settle_background
from tests.support.smtp_server import silent_server, smtp_server, text_of, tls_files
from tests.support.waiting import wait_until

USER, SMTP_PASSWORD = "citylogin-mailer", "smtp-pass-Q4r"
VERIFY = re.compile(r"/#verify=([A-Za-z0-9_-]+)")


@pytest.fixture
def mail_settings(tmp_path):
    ca, cert, key = tls_files(tmp_path)
    secret = tmp_path / "smtp-password"
    secret.write_text(SMTP_PASSWORD + "\n")
    with smtp_server(tmp_path / "smtp", cert=cert, key=key, login=f"{USER}:{SMTP_PASSWORD}") as server:
        yield server, {"notifier": "smtp", "smtp_host": "localhost", "smtp_port": server.port,
                       "smtp_ca_file": str(ca), "smtp_user": USER, "smtp_password_file": str(secret),
                       "smtp_sender": "Example ID <id@example.com>"}


def mails_to(server, address: str, count: int) -> dict[str, object]:
    """The mails that reached `address`, by subject, once there are `count` of them."""
    def arrived():
        found = [mail for mail, _ in server.messages() if mail["To"] == address]
        return found if len(found) >= count else None
    return {mail["Subject"]: mail for mail in wait_until(arrived, timeout=30, what=f"{count} mails to {address}")}


def test_registration_and_sign_in_mails_arrive_and_the_link_in_the_mail_works(make_server, mail_settings):
    server, settings = mail_settings
    url, _ = make_server(**settings)
    name = unique_name()
    english = Client(url)
    english.register(username=name, email=f"{name}@example.org", password=PASSWORD)
    english.login(PASSWORD)
    mails = mails_to(server, f"{name}@example.org", 3)
    assert set(mails) == {"Welcome to citylogin", "Confirm your e-mail address", "New sign-in to your account"}
    for mail in mails.values():
        assert email.utils.parseaddr(str(mail["From"])) == ("Example ID", "id@example.com")
    token = VERIFY.search(text_of(mails["Confirm your e-mail address"])).group(1)
    assert english.verify_email(token)["email_verified"] is True
    assert english.account()["email_verified"] is True

    japanese = unique_name()
    answer = requests.post(url + "/registration/", timeout=60, json={
        "username": japanese, "email": f"{japanese}@example.jp", "password": PASSWORD, "locale": "ja"})
    assert answer.status_code == 201, answer.text
    mails = mails_to(server, f"{japanese}@example.jp", 2)
    assert set(mails) == {"citylogin へようこそ", "メールアドレスの確認"}
    assert "24時間以内" in text_of(mails["メールアドレスの確認"])


def test_a_hanging_mail_server_holds_no_registration(make_server, caplog):
    with silent_server() as (port, held):
        url, ctx = make_server(notifier="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_sender="id@example.com",
                               notify_timeout=60, notify_attempts=1)
        caplog.set_level(logging.WARNING, logger="citylogin.notify")
        name = unique_name()
        answer = requests.post(url + "/registration/", timeout=60, json={
            "username": name, "email": f"{name}@example.org", "password": PASSWORD})
        assert answer.status_code == 201 and answer.json()["uuid"], answer.text
        # Answered while both mails (welcome, verification) still wait for a server that has said nothing.
        wait_until(lambda: len(held) == 2, what="both mails' connections")
        assert all(still_open(connection) for connection in held)
        for connection in held:  # the server hangs up: each mail fails at once
            connection.close()
        settle_background(ctx)
    failures = [r.getMessage() for r in caplog.records if "failed after" in r.getMessage()]
    assert sorted(f.split()[1] for f in failures) == ["registered", "verify_email"], failures
    assert name not in caplog.text and "#verify=" not in caplog.text and "example.org" not in caplog.text


def still_open(connection: socket.socket) -> bool:
    """The peer has neither closed the connection nor sent anything (STARTTLS: the client waits for
    the server's greeting)."""
    try:
        connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    return False
