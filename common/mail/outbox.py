"""The mail outbox (SPEC §7): every mail is written to DynamoDB before anything tries to send it, and
stays there until it is sent, or given up and kept for the operator.

A mail is written with the writing process's lease on it, so that process tries it at once (as mail
went before the outbox) and no other sends it meanwhile. A mail that did not go is due again after a
backoff (CITYLOGIN_MAIL_RETRY_SECONDS doubling, jittered, up to CITYLOGIN_MAIL_RETRY_MAX_SECONDS),
and whichever process's sender (common/mail/sender.py) claims it first tries it then. Tries go on until
CITYLOGIN_MAIL_GIVE_UP_HOURS after the mail was written; a mail still not sent then is "undelivered":
one ERROR line (its id and event, never its address, subject or body: a body may hold a one-time
token), the citylogin_mail_undelivered_total counter, and `citylogin mail list|resend|drop`.

Exactly once as far as the mail service allows: a sender holds the mail's lease while it sends and
marks it sent right after; a process that dies between the server's acceptance and that mark leaves it
to be sent again once the lease is over (LEASE_SECONDS, far longer than a try takes)."""
from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from prometheus_client import Counter

from common.errors import StorageUnavailable
from common.database.guarded_write import GuardedWrite
from common.mail import sealing
from common.mail.message import Mail, Message
from common.mail.outbox_store import DUE, OutboxStore

log = logging.getLogger("citylogin.notify")

LEASE_SECONDS = 300.0  # a try's longest run (CITYLOGIN_NOTIFY_ATTEMPTS x timeouts) is well within it
SENT_KEPT_SECONDS = 7 * 86400  # a sent mail's item (no contents left) stays for a week
UNDELIVERED_KEPT_SECONDS = 30 * 86400  # past the give-up time, for the operator to see
JITTER = (0.8, 1.2)
DELAYED_AFTER_SECONDS = 60.0  # a mail waiting longer than this: the mail is delayed (Notifier.delayed)

MAIL_OUTCOMES = Counter("citylogin_mail_total", "Mails sent, tried again later or given up, by outcome.",
                        ["outcome"])
MAIL_UNDELIVERED = Counter("citylogin_mail_undelivered_total",
                           "Mails given up: not sent within CITYLOGIN_MAIL_GIVE_UP_HOURS, or refused for good.")


@dataclass(frozen=True)
class Entry:
    """A mail this process holds the lease of, and may send."""

    mail_id: str
    mail: Mail
    since: float  # when the current run of tries began: the mail's writing, or its re-sending
    attempts: int = 1  # tries so far in this run, this one included
    rendered: Message | None = None  # rendered already (a notifier without an outbox renders as it is asked)


@dataclass(frozen=True)
class Timing:
    retry_seconds: float
    retry_max_seconds: float
    give_up_seconds: float
    lease_seconds: float = LEASE_SECONDS


class Outbox:
    def __init__(self, client: Any, table: str, *, secrets: sealing.SecretsByKid, timing: Timing,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = OutboxStore(client, table)
        self.secrets, self.timing, self.clock = secrets, timing, clock
        self.owner = uuid.uuid4().hex  # this process, in the leases it holds

    def enqueue(self, mail: Mail, *, leased: bool) -> Entry:
        """Write `mail` (its contents sealed), due now; held by this process if `leased`."""
        entry, item = self.prepare(mail, leased=leased)
        self.store.put(item)
        return entry

    def queued_write(self, mail: Mail, *, leased: bool) -> tuple[Entry, GuardedWrite]:
        """`mail`'s item as an entry of the caller's TransactWriteItems: written with the change it tells of."""
        entry, item = self.prepare(mail, leased=leased)
        # A refused put is a mail id already stored: a collision of random ids, worth a retry.
        return entry, GuardedWrite(item={"Put": self.store.put_request(item)}, refusal=StorageUnavailable)

    def prepare(self, mail: Mail, *, leased: bool) -> tuple[Entry, dict[str, Any]]:
        mail_id, now = uuid.uuid4().hex, self.clock()
        kid, sealed = sealing.seal(sealing.Contents(email=mail.email, params=mail.params), secrets=self.secrets,
                                   mail_id=mail_id, user_uuid=mail.user_uuid)
        item: dict[str, Any] = {
            "mail_id": mail_id, "user_uuid": mail.user_uuid, "event": mail.event, "texts": mail.texts,
            "locale": mail.locale or "", "state": DUE, "queue": DUE, "due_at": _n(now), "since": _n(now),
            "created_at": _n(now),
            "attempts": 1 if leased else 0, "sealed_kid": kid, "sealed": sealed,
            "expires_ttl": int(now + self.timing.give_up_seconds + UNDELIVERED_KEPT_SECONDS)}
        if leased:
            item.update(lease_owner=self.owner, lease_until=_n(now + self.timing.lease_seconds))
        return Entry(mail_id=mail_id, mail=mail, since=now, attempts=1), item

    def delayed(self) -> bool:
        """Whether a mail has waited in the outbox longer than DELAYED_AFTER_SECONDS: mail in general, not
        any one person's, is late (the senders cannot reach the mail service)."""
        since = self.store.waiting_since()
        return since is not None and self.clock() - since > DELAYED_AFTER_SECONDS

    def due_ids(self, limit: int) -> list[str]:
        return self.store.due_ids(now=self.clock(), limit=limit)

    def claim(self, mail_id: str) -> Entry | None:
        """The mail, leased to this process, if it is still due and nobody else holds it."""
        now = self.clock()
        item = self.store.claim(mail_id, owner=self.owner, now=now, until=now + self.timing.lease_seconds)
        if item is None:
            return None
        try:
            contents = sealing.open_sealed(item["sealed_kid"], bytes(item["sealed"]), secrets=self.secrets,
                                           mail_id=mail_id, user_uuid=item["user_uuid"])
        except (sealing.Unsealable, KeyError, ValueError) as exc:
            self._give_up(mail_id, item.get("event", "?"), f"unsealable ({type(exc).__name__})")
            return None
        mail = Mail(event=item["event"], user_uuid=item["user_uuid"], email=contents.email, texts=item["texts"],
                    locale=item.get("locale") or None, params=contents.params)
        return Entry(mail_id=mail_id, mail=mail, since=float(item["since"]), attempts=int(item.get("attempts", 1)))

    def sent(self, entry: Entry) -> None:
        now = self.clock()
        MAIL_OUTCOMES.labels("sent").inc()
        if not self.store.mark_sent(entry.mail_id, owner=self.owner, now=now, expires=int(now + SENT_KEPT_SECONDS)):
            log.warning("mail %s (%s) was sent after this process's lease on it ended: it may go twice",
                        entry.mail_id, entry.mail.event)

    def failed(self, entry: Entry, *, error: str, transient: bool) -> None:
        """Not sent: due again after a backoff, or given up (for good, or past the give-up time)."""
        now = self.clock()
        give_up_at = entry.since + self.timing.give_up_seconds
        if not transient or now >= give_up_at - 1:  # a second early: times are stored to the millisecond
            self._give_up(entry.mail_id, entry.mail.event, error)
            return
        MAIL_OUTCOMES.labels("retry").inc()
        step = self.timing.retry_seconds * 2 ** min(max(entry.attempts - 1, 0), 30)
        due = min(now + min(step, self.timing.retry_max_seconds) * random.uniform(*JITTER), give_up_at)
        if not self.store.retry_at(entry.mail_id, owner=self.owner, due_at=due, error=error):
            log.warning("mail %s (%s): this process's lease on it ended while it was tried", entry.mail_id,
                        entry.mail.event)

    def _give_up(self, mail_id: str, event: str, error: str) -> None:
        MAIL_OUTCOMES.labels("undelivered").inc()
        MAIL_UNDELIVERED.inc()
        if self.store.give_up(mail_id, owner=self.owner, now=self.clock(), error=error):
            # Never the address, the subject or the body: a body may hold a link's one-time token.
            log.error("mail %s (%s) undelivered: %s; kept for the operator (citylogin mail list, resend, drop)",
                      mail_id, event, error)


def _n(seconds: float) -> Decimal:
    return Decimal(f"{seconds:.3f}")  # DynamoDB's numbers: to the millisecond
