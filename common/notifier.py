"""Notifications of SPEC §7: console (default), Amazon SES or Amazon SNS.

A failure to notify is logged and never fails the request."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from common import i18n

log = logging.getLogger("citylogin.notify")


@dataclass(frozen=True)
class Message:
    """One notification to one user; `event` is a stable name such as "new_device"."""

    event: str
    user_uuid: str
    email: str | None
    subject: str
    body: str


def localized_message(event: str, *, user_uuid: str, email: str | None, locale: str | None,
                      texts: str | None = None, **params: object) -> Message:
    """A message whose subject and body are mail.<texts>.subject/.body (texts defaults to the
    event) in the account's locale, English if it has none; `{email}` is the recipient's address
    unless `params` say otherwise."""
    language, prefix = i18n.locale_of(locale), f"mail.{texts or event}"
    params = {"email": email, **params}
    return Message(event=event, user_uuid=user_uuid, email=email,
                   subject=i18n.text(f"{prefix}.subject", language, **params),
                   body=i18n.text(f"{prefix}.body", language, **params))


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
    the only place besides the message itself where a link's token appears."""

    def send(self, message: Message) -> None:
        log.info("notify %s user=%s to=%s\nSubject: %s\n\n%s", message.event, message.user_uuid,
                 message.email or "-", message.subject, message.body)


class SesBackend:
    def __init__(self, client, *, sender: str) -> None:
        self.client, self.sender = client, sender

    def send(self, message: Message) -> None:
        if not message.email:
            return
        self.client.send_email(
            Source=self.sender, Destination={"ToAddresses": [message.email]},
            Message={"Subject": {"Data": message.subject}, "Body": {"Text": {"Data": message.body}}})


class SnsBackend:
    def __init__(self, client, *, topic_arn: str) -> None:
        self.client, self.topic_arn = client, topic_arn

    def send(self, message: Message) -> None:
        self.client.publish(
            TopicArn=self.topic_arn, Subject=message.subject[:100], Message=message.body,
            MessageAttributes={"event": {"DataType": "String", "StringValue": message.event},
                               "user_uuid": {"DataType": "String", "StringValue": message.user_uuid}})


class Notifier:
    """Sends through one back end and swallows (but logs) its failures."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def notify(self, message: Message) -> None:
        try:
            self.backend.send(message)
        except (BotoCoreError, ClientError, OSError) as exc:
            log.warning("notification %s for user %s failed: %s", message.event, message.user_uuid,
                        type(exc).__name__)


def make_notifier(*, backend: str, region: str, ses_sender: str | None = None,
                  sns_topic_arn: str | None = None, boto_session=None) -> Notifier:
    import boto3
    session = boto_session or boto3.session.Session()
    if backend == "ses":
        if not ses_sender:
            raise ValueError("CITYLOGIN_SES_SENDER is required when CITYLOGIN_NOTIFIER=ses")
        return Notifier(SesBackend(session.client("ses", region_name=region), sender=ses_sender))
    if backend == "sns":
        if not sns_topic_arn:
            raise ValueError("CITYLOGIN_SNS_TOPIC_ARN is required when CITYLOGIN_NOTIFIER=sns")
        return Notifier(SnsBackend(session.client("sns", region_name=region), topic_arn=sns_topic_arn))
    return Notifier(ConsoleBackend())
