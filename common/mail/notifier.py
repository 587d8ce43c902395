"""Notifications of SPEC §7: console (default), Amazon SES, Amazon SNS or mail over SMTP.

A failure to notify is logged and never fails the request. Every mail is first written to the outbox
(common/mail/outbox.py), then SES, SNS and SMTP are sent off the request path, from the notifier's own few
threads, with short timeouts and a few retries with backoff, so a slow or unreachable mail service
never stalls a login; what still did not go is tried again by the outbox's senders for hours."""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formataddr, parseaddr
from typing import Any, Callable, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from common import i18n
from common.config import ConfigError
from common.database.guarded_write import GuardedWrite
from common.mail.message import Mail, Message, Param
from common.mail.outbox import DELAYED_AFTER_SECONDS, Entry, Outbox
from common.mail.smtp_mail import SmtpBackend, SmtpServer, smtp_failure, smtp_transient

log = logging.getLogger("citylogin.notify")


def localized_message(event: str, *, user_uuid: str, email: str | None, locale: str | None,
                      texts: str | None = None, **params: Param) -> Mail:
    """A mail whose subject and body are mail.<texts>.subject/.body (texts defaults to the event) in
    the account's locale, English if it has none, rendered by the process that delivers it (a Link
    param becomes <public_url>/#<kind>=<token> there); `{email}` is the recipient's address unless
    `params` say otherwise."""
    return Mail(event=event, user_uuid=user_uuid, email=email, texts=texts or event, locale=locale, params=params)


def mail_time(moment: datetime, locale: str | None) -> str:
    """`moment` as the locale writes a date and time, always in UTC and saying so: an account
    has no time zone setting."""
    language = i18n.locale_of(locale)
    return moment.astimezone(timezone.utc).strftime(i18n.text("mail.time_format", language))


def device_facts(locale: str | None, *, device_name: str, device_class: str, at: datetime,
                 ip: str | None = None) -> str:
    """The lines that say which device, of what class, when and (if known) from which IP address."""
    language = i18n.locale_of(locale)
    lines = [i18n.text("mail.facts.device", language, device=device_name,
                       device_class=device_class_name(device_class, language)),
             i18n.text("mail.facts.time", language, time=mail_time(at, language))]
    if ip:
        lines.append(i18n.text("mail.facts.ip", language, ip=ip))
    return "\n".join(lines)


def device_class_name(device_class: str, locale: str | None) -> str:
    key = f"mail.device_class.{device_class}"
    return i18n.text(key if i18n.has(key) else "mail.device_class.other", i18n.locale_of(locale))


class Backend(Protocol):
    def send(self, message: Message) -> None: ...


class ConsoleBackend:
    """The whole message in the log, links included, so a developer can follow them locally;
    the only place besides the message itself where a link's token appears. Inline: it cannot stall.
    `sender_name`: the brand's display name for the mail's sender (a From: line), if it sets one."""

    def __init__(self, *, sender_name: str | None = None) -> None:
        self.sender_name = sender_name

    def send(self, message: Message) -> None:
        sender = f"From: {self.sender_name}\n" if self.sender_name else ""
        log.info("notify %s user=%s to=%s\n%sSubject: %s\n\n%s", message.event, message.user_uuid,
                 message.email or "-", sender, message.subject, message.body)


def with_display_name(sender: str, display_name: str | None) -> str:
    """The sender address `sender` ("a@b" or "Name <a@b>") under `display_name` (RFC 5322, encoded
    when not ASCII), or `sender` as configured when no display name is given."""
    return formataddr((display_name, parseaddr(sender)[1])) if display_name else sender


class SesBackend:
    remote = True  # a network call: sent off the request path

    def __init__(self, client: Any, *, sender: str, sender_name: str | None = None) -> None:
        self.client, self.sender = client, with_display_name(sender, sender_name)

    def send(self, message: Message) -> None:
        if not message.email:
            return
        self.client.send_email(
            Source=self.sender, Destination={"ToAddresses": [message.email]},
            Message={"Subject": {"Data": message.subject}, "Body": {"Text": {"Data": message.body}}})


class SnsBackend:
    remote = True

    def __init__(self, client: Any, *, topic_arn: str) -> None:
        self.client, self.topic_arn = client, topic_arn

    def send(self, message: Message) -> None:
        self.client.publish(
            TopicArn=self.topic_arn, Subject=message.subject[:100], Message=message.body,
            MessageAttributes={"event": {"DataType": "String", "StringValue": message.event},
                               "user_uuid": {"DataType": "String", "StringValue": message.user_uuid}})


@dataclass(frozen=True)
class Queued:
    """A mail's outbox entry for a transaction (Notifier.queued)."""

    entry: Entry
    write: GuardedWrite


SEND_THREADS = 4
MAX_PENDING = 500      # messages waiting for a thread; beyond, the outbox's senders take them (after the lease)
BACKOFF_SECONDS = 0.5  # before the 2nd attempt; doubled (with jitter) before each further one


class Notifier:
    """Sends through one back end and never fails the request. With an outbox attached (every
    process with a database: common.runtime.context), `notify` first writes the mail to it, then tries it at once:
    inline for the console (it cannot stall), else in the background, `attempts` times at most with
    backoff while `transient` says another attempt may succeed; what does not go is tried again by the
    outbox's senders (common/mail/outbox.py). `delivers` False (an operator's command): it only writes the
    mail, for the running service to send with its own settings. `describe` says what failed in the log."""

    def __init__(self, backend: Backend, *, attempts: int = 3,
                 transient: Callable[[Exception], bool] | None = None,
                 describe: Callable[[Exception], str] | None = None) -> None:
        self.backend, self.attempts = backend, attempts
        self._transient = transient or _transient
        self._describe = describe or _type_name
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        self._changed = threading.Condition()
        self.outbox: Outbox | None = None
        self.render: Callable[[Mail], Message] = lambda mail: mail.render(None)
        self.delivers = True
        self.written: list[str] = []  # the ids of the mails written while `delivers` is False
        self._last_failure: float | None = None  # monotonic time of this process's last failed try, if none went since

    def attach(self, outbox: Outbox, *, render: Callable[[Mail], Message]) -> None:
        """Write every mail to `outbox` first; `render` makes it the message this process sends."""
        self.outbox, self.render = outbox, render

    def notify(self, mail: Mail) -> None:
        entry = self._write(mail)
        if not self.delivers:
            return
        # Without an outbox the mail is rendered here, in the brand of the request or command in this context.
        self.hand_over(entry or Entry(mail_id="", mail=mail, since=0.0, rendered=self.render(mail)),
                       attempts=self.attempts)

    def queued(self, mail: Mail) -> Queued:
        """`mail` to write in the caller's transaction (`write`), with the change it tells of; once that
        commits, `send_queued` tries it."""
        if self.outbox is None:
            raise RuntimeError("a notifier without an outbox writes nothing in a transaction")
        entry, write = self.outbox.queued_write(mail, leased=self.delivers)
        return Queued(entry=entry, write=write)

    def send_queued(self, queued: Queued) -> None:
        """After the transaction that wrote `queued` committed."""
        if self.delivers:
            self.hand_over(queued.entry, attempts=self.attempts)
        else:
            self.written.append(queued.entry.mail_id)

    def _write(self, mail: Mail) -> Entry | None:
        if self.outbox is None:
            return None
        try:
            entry = self.outbox.enqueue(mail, leased=self.delivers)
        except (BotoCoreError, ClientError) as exc:
            # The change that caused the mail is made: it is still tried, as before the outbox, only not kept.
            log.error("notification %s for user %s not written to the outbox (%s)%s", mail.event, mail.user_uuid,
                      type(exc).__name__, "; sending it without" if self.delivers else ": it will not be sent")
            return None
        if not self.delivers:
            self.written.append(entry.mail_id)
        return entry

    def hand_over(self, entry: Entry, *, attempts: int) -> None:
        """Try `entry` (leased to this process) now: inline for a back end on this machine, else in the background."""
        if not getattr(self.backend, "remote", False):
            self.deliver(entry, attempts=1)
            return
        with self._changed:
            if self._pending >= MAX_PENDING:
                log.warning("notification %s for user %s left to the outbox: %d messages are waiting to be sent",
                            entry.mail.event, entry.mail.user_uuid, self._pending)
                return
            self._pending += 1
            if self._pool is None:  # made on first use: in the worker process, after a fork
                self._pool = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="citylogin-notify")
            pool = self._pool
        pool.submit(self._deliver_counted, entry, attempts)

    def _deliver_counted(self, entry: Entry, attempts: int) -> None:
        try:
            self.deliver(entry, attempts=attempts)
        finally:
            with self._changed:
                self._pending -= 1
                self._changed.notify_all()

    def deliver(self, entry: Entry, *, attempts: int) -> bool:
        """Render and send `entry`, then tell the outbox how it went; whether it was sent."""
        try:
            failure = self._send(entry.rendered or self.render(entry.mail), attempts=attempts)
            transient = failure is not None and self._transient(failure)
            error = self._describe(failure) if failure is not None else ""
        except (ConfigError, ValueError, KeyError) as exc:  # a link and no public URL, texts this release lacks
            log.warning("notification %s for user %s cannot be rendered here: %s", entry.mail.event,
                        entry.mail.user_uuid, exc)
            failure, transient, error = exc, False, f"not rendered ({type(exc).__name__})"
        self._last_failure = None if failure is None else time.monotonic()
        if self.outbox is not None and entry.mail_id:
            try:
                if failure is None:
                    self.outbox.sent(entry)
                else:
                    self.outbox.failed(entry, error=error, transient=transient)
            except (BotoCoreError, ClientError) as exc:
                log.warning("mail %s (%s): its outcome not written to the outbox (%s); tried again after its lease",
                            entry.mail_id, entry.mail.event, type(exc).__name__)
        return failure is None

    def _send(self, message: Message, *, attempts: int) -> Exception | None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.backend.send(message)
                return None
            except (BotoCoreError, ClientError, OSError) as exc:
                if attempt >= attempts or not self._transient(exc):
                    # Never the address, the subject or the body: a body may hold a link's one-time token.
                    log.warning("notification %s for user %s failed after %d attempt(s): %s", message.event,
                                message.user_uuid, attempt, self._describe(exc))
                    return exc
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1) * random.uniform(0.8, 1.2))

    def delayed(self) -> bool:
        """Whether mail is late now, in general (never one person's mail): this process's last try failed
        within DELAYED_AFTER_SECONDS x 10 and none went since, or a mail has waited in the outbox longer than
        DELAYED_AFTER_SECONDS. What a page says instead of "sent" (SPEC §4: the same for every address)."""
        failed = self._last_failure
        if failed is not None and time.monotonic() - failed < DELAYED_AFTER_SECONDS * 10:
            return True
        try:
            return self.outbox is not None and self.outbox.delayed()
        except (BotoCoreError, ClientError):
            return False  # the outbox cannot be read now: the request's own writes tell of that

    def settle(self, timeout: float = 120.0) -> bool:
        """Wait until every message handed over so far has been tried; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True


def _transient(exc: Exception) -> bool:
    """Worth another attempt: a timeout, a lost connection, throttling or a 5xx (not a rejection)."""
    if not isinstance(exc, ClientError):
        return True
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return status >= 500 or status == 429 or "Throttl" in exc.response.get("Error", {}).get("Code", "")


def _type_name(exc: Exception) -> str:
    return type(exc).__name__


def _aws_config(timeout: float) -> Config:
    # One attempt per botocore call: the notifier retries, with its own backoff, off the request path.
    return Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})


def make_notifier(*, backend: str, region: str, ses_sender: str | None = None,
                  sns_topic_arn: str | None = None, boto_session: Any = None, endpoint_url: str | None = None,
                  timeout: float = 5.0, attempts: int = 3, smtp: SmtpServer | None = None,
                  sender_name: str | None = None) -> Notifier:
    """`endpoint_url`: another SES or SNS endpoint than AWS's (a local stand-in, a VPC endpoint);
    `smtp`: the server of the smtp back end; `sender_name`: the brand's display name for the mail's
    sender (common.brand.Brand.sender_name)."""
    if backend == "smtp":
        if smtp is None:
            raise ValueError("CITYLOGIN_SMTP_HOST is required when CITYLOGIN_NOTIFIER=smtp")
        return Notifier(SmtpBackend(smtp, sender_name=sender_name), attempts=attempts, transient=smtp_transient,
                        describe=smtp_failure)
    if backend not in ("ses", "sns"):
        return Notifier(ConsoleBackend(sender_name=sender_name))
    import boto3  # a boto3 session costs 0.1 s of CPU: only the back ends that call AWS make one
    session = boto_session or boto3.session.Session()
    client = session.client(backend, region_name=region, endpoint_url=endpoint_url, config=_aws_config(timeout))
    if backend == "ses":
        if not ses_sender:
            raise ValueError("CITYLOGIN_SES_SENDER is required when CITYLOGIN_NOTIFIER=ses")
        return Notifier(SesBackend(client, sender=ses_sender, sender_name=sender_name), attempts=attempts)
    if not sns_topic_arn:
        raise ValueError("CITYLOGIN_SNS_TOPIC_ARN is required when CITYLOGIN_NOTIFIER=sns")
    return Notifier(SnsBackend(client, topic_arn=sns_topic_arn), attempts=attempts)
