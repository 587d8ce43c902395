"""Mail over SMTP (CITYLOGIN_NOTIFIER=smtp): one connection per message, secured by STARTTLS or TLS
from the first byte (plain text only to a server on this machine, common.config), with a certificate
checked against the system's CAs or CITYLOGIN_SMTP_CA_FILE's. Sent from the notifier's own threads."""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Callable

from common.config import Settings, SmtpSecurity
from common.mail.message import Message


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: SmtpSecurity
    sender: str                         # the From header: an address, with or without a display name
    user: str | None = None
    password: Callable[[], str] | None = None  # read at each connection: a rotated secret file is picked up
    ca_file: Path | None = None
    timeout: float = 5.0                # seconds to connect, and for each reply


def smtp_server(settings: Settings) -> SmtpServer:
    """The server CITYLOGIN_SMTP_* describe (validated when they loaded)."""
    assert settings.smtp_host and settings.smtp_sender, "checked by common.config"
    password: Callable[[], str] | None = None
    if settings.smtp_password_file is not None:
        password = _file_reader(settings.smtp_password_file)
    elif settings.smtp_password is not None:
        password = settings.smtp_password.get_secret_value
    return SmtpServer(host=settings.smtp_host, port=settings.smtp_port_or_default, security=settings.smtp_security,
                      sender=settings.smtp_sender, user=settings.smtp_user, password=password,
                      ca_file=settings.smtp_ca_file, timeout=settings.notify_timeout)


def _file_reader(path: Path) -> Callable[[], str]:
    def read() -> str:
        return path.read_text(encoding="utf-8").strip()
    return read


def compose(message: Message, *, sender: str, now: datetime | None = None) -> EmailMessage:
    """The mail of `message`: UTF-8 text, the Subject (and a sender's display name) encoded as RFC 2047
    asks when it is not ASCII (Japanese), Date, a Message-ID at the sender's domain, and Auto-Submitted so that no
    auto-responder answers it (RFC 3834)."""
    assert message.email
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.email
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(now or datetime.now(timezone.utc))
    mail["Message-ID"] = make_msgid(domain=sender_domain(sender))
    mail["Auto-Submitted"] = "auto-generated"
    # 7-bit clean for any server (smtplib declares no 8BITMIME): base64 for a body that is not ASCII
    mail.set_content(message.body, charset="utf-8", cte=None if message.body.isascii() else "base64")
    return mail


def sender_domain(sender: str) -> str:
    return getaddresses([sender])[0][1].rpartition("@")[2]


class SmtpBackend:
    remote = True  # a network call: sent off the request path

    def __init__(self, server: SmtpServer, *, sender_name: str | None = None) -> None:
        # The brand's display name (common.brand) over the configured sender's, the address kept.
        self.server, self.sender = server, formataddr((sender_name, parseaddr(server.sender)[1])) if sender_name \
            else server.sender
        self._tls = ssl.create_default_context(cafile=str(server.ca_file) if server.ca_file else None)
        self._helo: str | None = None

    def send(self, message: Message) -> None:
        if not message.email:
            return
        mail = compose(message, sender=self.sender)
        with self._connect() as smtp:
            if self.server.security is SmtpSecurity.STARTTLS:
                smtp.starttls(context=self._tls)  # SMTPNotSupportedError if not offered: never sent in clear
            if self.server.user and self.server.password:
                smtp.login(self.server.user, self.server.password())
            smtp.send_message(mail)

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if self._helo is None:  # smtplib would look the name up on every connection
            self._helo = socket.getfqdn()
        if server.security is SmtpSecurity.TLS:
            return smtplib.SMTP_SSL(server.host, server.port, local_hostname=self._helo, timeout=server.timeout,
                                    context=self._tls)
        return smtplib.SMTP(server.host, server.port, local_hostname=self._helo, timeout=server.timeout)


def smtp_transient(exc: Exception) -> bool:
    """Worth another attempt: a timeout, a refused or lost connection, or a 4xx reply. A 5xx reply
    (a refused recipient or sender, a failed login), a certificate that does not check and a server
    without STARTTLS fail the same way again."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return not isinstance(exc, (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError))


def smtp_failure(exc: Exception) -> str:
    """How a failure is logged: its type and the server's reply code, never the reply's text (it
    may quote the address)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"{type(exc).__name__} {' '.join(str(code) for code, _ in exc.recipients.values())}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code}"
    cause = exc.__cause__ or exc.__context__  # smtplib turns a timeout on a reply into SMTPServerDisconnected
    return f"{type(exc).__name__} ({type(cause).__name__})" if isinstance(cause, OSError) else type(exc).__name__
