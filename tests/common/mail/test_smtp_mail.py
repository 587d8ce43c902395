"""Mail over SMTP (issue 54 item 1) against a real SMTP server in its own process (aiosmtpd,
tests/support/smtp_server.py): English and Japanese mail arrive whole over STARTTLS or TLS to a
certificate the test's CA signs, with AUTH; and a server that refuses, hangs or is down makes one
quick failure, logged once without the address, the password or the link's token."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from common.config import SmtpSecurity
from common.mail.message import Mail
from common.mail.notifier import Notifier, localized_message, make_notifier
from common.mail.smtp_mail import SmtpServer
from tests.support.ports import free_port
from tests.support.smtp_server import silent_server, smtp_server, text_of, tls_files
from tests.support.waiting import wait_until

SENDER = "citylogin <no-reply@example.com>"
TOKEN = "link-token-Zq8"  # a link's one-time token: it must never reach the log
USER, PASSWORD = "mailer", "smtp-pass-W7x"


def verification(locale: str, email: str = "hanako@example.com") -> Mail:
    return localized_message("verify_email", user_uuid="u-1", email=email, locale=locale,
                             link=f"https://id.example.com/#verify={TOKEN}")


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[Path, Path, Path]:
    return tls_files(tmp_path_factory.mktemp("smtp-tls"))


def notifier_for(port: int, *, security: SmtpSecurity = SmtpSecurity.NONE, ca_file: Path | None = None,
                 user: str | None = None, password: str | None = None, timeout: float = 5.0,
                 attempts: int = 3) -> Notifier:
    server = SmtpServer(host="127.0.0.1", port=port, security=security, sender=SENDER, user=user,
                        password=(lambda: password) if password is not None else None, ca_file=ca_file,
                        timeout=timeout)
    return make_notifier(backend="smtp", region="-", smtp=server, attempts=attempts)


def failures(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "failed after" in r.getMessage()]


def assert_no_secret_in(caplog) -> None:
    for secret in (TOKEN, PASSWORD, "hanako", "example.com", "#verify="):
        assert secret not in caplog.text, secret


def sent(notifier: Notifier, *messages: Mail) -> None:
    for message in messages:
        notifier.notify(message)
    assert notifier.settle(timeout=60)


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.WARNING, logger="citylogin.notify")
    return caplog


def test_an_english_and_a_japanese_mail_arrive_whole_over_starttls_with_auth(tmp_path, tls, logged):
    ca, cert, key = tls
    with smtp_server(tmp_path / "smtp", cert=cert, key=key, login=f"{USER}:{PASSWORD}") as server:
        notifier = notifier_for(server.port, security=SmtpSecurity.STARTTLS, ca_file=ca, user=USER, password=PASSWORD)
        english, japanese = verification("en", "ada@example.com"), verification("ja", "hanako@example.jp")
        sent(notifier, english, japanese)
        received = {mail["To"]: (mail, session) for mail, session in server.messages()}
    assert set(received) == {"ada@example.com", "hanako@example.jp"} and not failures(logged)
    for message in (english.render(None), japanese.render(None)):
        mail, session = received[message.email]
        assert session == {"mail_from": "no-reply@example.com", "rcpt_tos": [message.email], "tls": True,
                           "login": USER}
        assert mail["Subject"] == message.subject and text_of(mail) == message.body
        assert str(mail["From"]) == SENDER and mail["Date"] and mail["Message-ID"]
    assert received["hanako@example.jp"][0]["Subject"] == "メールアドレスの確認"
    assert "24時間以内" in text_of(received["hanako@example.jp"][0])


def test_tls_from_the_first_byte(tmp_path, tls):
    ca, cert, key = tls
    with smtp_server(tmp_path / "smtp", cert=cert, key=key, implicit_tls=True) as server:
        sent(notifier_for(server.port, security=SmtpSecurity.TLS, ca_file=ca), verification("en"))
        [(mail, session)] = server.messages()
    assert session["tls"] and mail["Subject"] == "Confirm your e-mail address"


def test_a_certificate_no_trusted_ca_signed_is_refused_at_once(tmp_path, tls, logged):
    _, cert, key = tls
    with smtp_server(tmp_path / "smtp", cert=cert, key=key) as server:
        sent(notifier_for(server.port, security=SmtpSecurity.STARTTLS), verification("en"))  # the system's CAs
        assert server.messages() == []
    assert failures(logged) == ["notification verify_email for user u-1 failed after 1 attempt(s): "
                                "SSLCertVerificationError"]


def test_starttls_never_falls_back_to_plain_text(tmp_path, logged):
    with smtp_server(tmp_path / "smtp") as server:  # offers no STARTTLS
        sent(notifier_for(server.port, security=SmtpSecurity.STARTTLS), verification("en"))
        assert server.messages() == []
    assert failures(logged) == ["notification verify_email for user u-1 failed after 1 attempt(s): "
                                "SMTPNotSupportedError"]


def test_a_wrong_password_fails_once_and_is_not_logged(tmp_path, tls, logged):
    ca, cert, key = tls
    with smtp_server(tmp_path / "smtp", cert=cert, key=key, login=f"{USER}:the-right-one") as server:
        sent(notifier_for(server.port, security=SmtpSecurity.STARTTLS, ca_file=ca, user=USER, password=PASSWORD),
             verification("en"))
        assert server.messages() == []
    assert failures(logged) == ["notification verify_email for user u-1 failed after 1 attempt(s): "
                                "SMTPAuthenticationError 535"]
    assert_no_secret_in(logged)


def test_a_password_file_is_read_at_each_connection(tmp_path, tls, logged):
    # A rotated secret (a mounted secret file) is used without a restart.
    from common.config import load_settings
    from common.mail.smtp_mail import smtp_server as server_of
    ca, cert, key = tls
    secret = tmp_path / "smtp-password"
    secret.write_text("an-old-password\n")
    with smtp_server(tmp_path / "smtp", cert=cert, key=key, login=f"{USER}:{PASSWORD}") as server:
        settings = load_settings(environ={
            "CITYLOGIN_NOTIFIER": "smtp", "CITYLOGIN_SMTP_HOST": "127.0.0.1", "CITYLOGIN_SMTP_PORT": str(server.port),
            "CITYLOGIN_SMTP_SENDER": SENDER, "CITYLOGIN_SMTP_CA_FILE": str(ca), "CITYLOGIN_SMTP_USER": USER,
            "CITYLOGIN_SMTP_PASSWORD_FILE": str(secret)})
        notifier = make_notifier(backend="smtp", region="-", smtp=server_of(settings))
        sent(notifier, verification("en", "first@example.org"))
        secret.write_text(PASSWORD + "\n")
        sent(notifier, verification("en", "second@example.org"))
        assert [mail["To"] for mail, _ in server.messages()] == ["second@example.org"]
    assert [f.rpartition(": ")[2] for f in failures(logged)] == ["SMTPAuthenticationError 535"]


def test_a_refusing_server_is_not_asked_again(tmp_path, logged):
    with smtp_server(tmp_path / "smtp", refuse="550") as server:
        sent(notifier_for(server.port), verification("en"))
        assert server.refusals() == ["550"] and server.messages() == []
    assert failures(logged) == ["notification verify_email for user u-1 failed after 1 attempt(s): "
                                "SMTPRecipientsRefused 550"]
    assert_no_secret_in(logged)


def test_a_server_refusing_for_now_is_tried_again_then_given_up_with_one_line(tmp_path, logged):
    with smtp_server(tmp_path / "smtp", refuse="451") as server:
        sent(notifier_for(server.port, attempts=3), verification("en"))
        assert server.refusals() == ["451"] * 3
    assert failures(logged) == ["notification verify_email for user u-1 failed after 3 attempt(s): "
                                "SMTPRecipientsRefused 451"]


def test_a_server_that_is_down_fails_quickly(logged):
    port = free_port()  # nothing listens there
    sent(notifier_for(port, attempts=2), verification("en"))
    assert failures(logged) == ["notification verify_email for user u-1 failed after 2 attempt(s): "
                                "ConnectionRefusedError"]
    assert_no_secret_in(logged)


def test_a_hanging_server_times_out_and_is_logged_once(logged):
    with silent_server() as (port, held):
        sent(notifier_for(port, timeout=0.5, attempts=2), verification("en"))
        assert len(held) == 2
    assert failures(logged) == ["notification verify_email for user u-1 failed after 2 attempt(s): "
                                "SMTPServerDisconnected (TimeoutError)"]
    assert_no_secret_in(logged)


def test_mail_waits_for_no_one(tmp_path):
    """notify() hands the mail to the notifier's threads: it returns while the server still hangs."""
    with silent_server() as (port, held):
        notifier = notifier_for(port, timeout=60, attempts=1)
        notifier.notify(verification("en"))
        wait_until(lambda: held, what="the mail's connection")
        assert not notifier.settle(timeout=0)  # still waiting on the server's greeting
        held[0].close()                        # the server gives up: the mail fails at once
        assert notifier.settle(timeout=30)

