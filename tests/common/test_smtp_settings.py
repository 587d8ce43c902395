"""The SMTP settings (issue 54 item 1): read from CITYLOGIN_SMTP_*, each bad value or combination
stopping the start with a message that names the variable and never quotes the password; and the
mail a message becomes (headers, UTF-8, a Japanese subject encoded for any server)."""
from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone

import pytest

from citylogin.app import create_app
from common.config import ConfigError, NotifierBackend, SmtpSecurity, load_settings
from common.mail.message import Message
from common.mail.smtp_mail import compose, smtp_server
from tests.support.tls import new_authority, write_cert

SMTP = {"CITYLOGIN_NOTIFIER": "smtp", "CITYLOGIN_SMTP_HOST": "smtp.example.com",
        "CITYLOGIN_SMTP_SENDER": "citylogin <no-reply@example.com>"}


def settings(**variables: str):
    return load_settings(environ={**SMTP, **{f"CITYLOGIN_{k.upper()}": v for k, v in variables.items()}})


def refusal(**variables: str) -> str:
    with pytest.raises(ConfigError) as refused:
        settings(**variables)
    return str(refused.value)


def test_the_settings_come_from_the_environment_with_their_defaults(tmp_path):
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret-from-a-file\n")
    plain = settings()
    assert (plain.notifier, plain.smtp_security, plain.smtp_port_or_default) == \
        (NotifierBackend.SMTP, SmtpSecurity.STARTTLS, 587)
    assert settings(smtp_security="tls").smtp_port_or_default == 465
    assert settings(smtp_host="127.0.0.1", smtp_security="none").smtp_port_or_default == 25
    assert settings(smtp_port="2525").smtp_port_or_default == 2525
    from_file = smtp_server(settings(smtp_user="mailer", smtp_password_file=str(secret)))
    assert from_file.user == "mailer" and from_file.password and from_file.password() == "s3cret-from-a-file"
    inline = settings(smtp_user="mailer", smtp_password="inline-s3cret")
    assert smtp_server(inline).password() == "inline-s3cret"  # type: ignore[misc]
    assert "inline-s3cret" not in repr(inline) and "inline-s3cret" not in repr(smtp_server(inline))


@pytest.mark.parametrize("missing", ["smtp_host", "smtp_sender"])
def test_the_host_and_the_sender_are_required(missing):
    environ = {k: v for k, v in SMTP.items() if k != f"CITYLOGIN_{missing.upper()}"}
    with pytest.raises(ConfigError, match=f"CITYLOGIN_{missing.upper()} .*is required when CITYLOGIN_NOTIFIER=smtp"):
        load_settings(environ=environ)


def test_no_encryption_is_refused_to_a_server_off_this_machine():
    message = refusal(smtp_security="none")
    assert "CITYLOGIN_SMTP_SECURITY=none" in message and "smtp.example.com" in message
    for local in ("127.0.0.1", "localhost", "::1", "[::1]"):
        assert settings(smtp_host=local, smtp_security="none").smtp_security is SmtpSecurity.NONE


@pytest.mark.parametrize(("variables", "named"), [
    ({"smtp_security": "ssl"}, "CITYLOGIN_SMTP_SECURITY"),
    ({"smtp_port": "0"}, "CITYLOGIN_SMTP_PORT"),
    ({"smtp_port": "smtp"}, "CITYLOGIN_SMTP_PORT"),
    ({"smtp_host": "smtp://mail.example.com"}, "CITYLOGIN_SMTP_HOST"),
    ({"smtp_host": "mail.example.com:587"}, "CITYLOGIN_SMTP_HOST"),
    ({"smtp_sender": "no-reply"}, "CITYLOGIN_SMTP_SENDER"),
    ({"smtp_sender": "a@example.com, b@example.com"}, "CITYLOGIN_SMTP_SENDER"),
    ({"smtp_user": "mailer"}, "CITYLOGIN_SMTP_USER"),
    ({"smtp_password": "s3cret"}, "CITYLOGIN_SMTP_USER"),
    ({"smtp_user": "mailer", "smtp_password_file": "/nonexistent/smtp-password"}, "CITYLOGIN_SMTP_PASSWORD_FILE"),
    ({"smtp_ca_file": "/nonexistent/ca.pem"}, "CITYLOGIN_SMTP_CA_FILE"),
    ({"notify_timeout": "0"}, "CITYLOGIN_NOTIFY_TIMEOUT"),
    # a rule between settings names its variables too, and one that reads another's value does
    ({"dynamodb_endpoint_url": "http://db.example:8000", "dynamodb_local": "maybe"}, "CITYLOGIN_DYNAMODB_LOCAL"),
])
def test_a_bad_value_is_refused_naming_its_variable(variables, named):
    assert named in refusal(**variables)


def test_a_password_inline_and_in_a_file_is_refused_without_quoting_it(tmp_path):
    secret = tmp_path / "smtp-password"
    secret.write_text("file-s3cret")
    message = refusal(smtp_user="mailer", smtp_password="inline-s3cret", smtp_password_file=str(secret))
    assert "CITYLOGIN_SMTP_PASSWORD or CITYLOGIN_SMTP_PASSWORD_FILE, not both" in message
    assert "s3cret" not in message
    (tmp_path / "empty").write_text("\n")
    assert "is empty" in refusal(smtp_user="mailer", smtp_password_file=str(tmp_path / "empty"))


def test_a_ca_file_must_hold_certificates(tmp_path):
    (tmp_path / "not-a-ca.pem").write_text("hello\n")
    assert "CITYLOGIN_SMTP_CA_FILE" in refusal(smtp_ca_file=str(tmp_path / "not-a-ca.pem"))
    ca = write_cert(tmp_path / "ca.pem", new_authority("a mail CA").cert)
    assert settings(smtp_ca_file=str(ca)).smtp_ca_file == ca


def test_the_app_does_not_start_with_bad_smtp_settings(base_config):
    with pytest.raises(ConfigError, match="CITYLOGIN_SMTP_SECURITY=none"):
        create_app({**base_config, "notifier": "smtp", "smtp_host": "mail.example.com", "smtp_security": "none",
                    "smtp_sender": "no-reply@example.com"})


MESSAGE = Message(event="new_device", user_uuid="u-1", email="hanako@example.jp",
                  subject="新しいデバイスが追加されました",
                  body="デバイス「電話」がアカウントに追加されました。\nhttps://id.example.jp/#not-me=token-123")


def test_a_japanese_message_becomes_a_mail_any_server_carries():
    moment = datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)
    mail = compose(MESSAGE, sender="シティログイン <no-reply@example.jp>", now=moment)
    raw = mail.as_bytes()
    raw.decode("ascii")  # RFC 2047 headers and a base64 or quoted-printable body: 7-bit clean
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == MESSAGE.subject and parsed["To"] == MESSAGE.email
    assert parsed["From"].addresses[0].display_name == "シティログイン"
    assert parsed["From"].addresses[0].addr_spec == "no-reply@example.jp"
    assert parsed["Date"].datetime == moment
    assert parsed["Message-ID"].endswith("@example.jp>") and parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "text/plain" and parsed.get_content_charset() == "utf-8"
    assert parsed.get_content().rstrip("\n") == MESSAGE.body


def test_a_brands_name_is_the_mails_sender_name_at_the_configured_address():
    from common.mail.smtp_mail import SmtpBackend

    server = smtp_server(settings())
    assert SmtpBackend(server).sender == "citylogin <no-reply@example.com>"
    branded = SmtpBackend(server, sender_name="Acme ID").sender
    parsed = email.message_from_bytes(compose(MESSAGE, sender=branded).as_bytes(), policy=email.policy.default)
    assert (parsed["From"].addresses[0].display_name, parsed["From"].addresses[0].addr_spec) == \
        ("Acme ID", "no-reply@example.com")
