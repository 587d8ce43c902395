"""Each serving process's mail sender: every CITYLOGIN_MAIL_SEND_INTERVAL seconds (jittered) it reads
the outbox's due mails (one Query of the sparse queue index, empty almost always) and sends each one it
can claim (a conditional write: its lease), so that a mail whose first try failed, or whose process
died, goes from whichever process comes first, on any host."""
from __future__ import annotations

import logging
import random
import threading
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from common.log_bursts import BurstLog
from common.thread_kind import scheduled_thread
from common.mail.notifier import Notifier

log = logging.getLogger("citylogin.notify")

BATCH = 25  # due mails read per Query; a turn goes on while a full page came


class MailSender:
    def __init__(self, notifier: Notifier, *, interval: float) -> None:
        self.notifier, self.interval = notifier, interval
        self._stop, self._wake = threading.Event(), threading.Event()
        self._log = BurstLog(log)

    def start(self) -> None:
        threading.Thread(target=self.run, name="citylogin-mail-sender", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.turn()
            except (BotoCoreError, ClientError) as exc:
                self._log.log(logging.WARNING, "mail sender: the outbox cannot be read now (%s)", type(exc).__name__)
            self._wake.wait(self.interval * random.uniform(0.8, 1.2))  # processes started together spread out

    def turn(self) -> int:
        """Send what is due and claimable now; how many were tried."""
        outbox, tried = self.notifier.outbox, 0
        if outbox is None:
            return 0
        while not self._stop.is_set():
            due, before = outbox.due_ids(BATCH), tried
            for mail_id in due:
                entry = outbox.claim(mail_id)
                if entry is not None:
                    self.notifier.deliver(entry, attempts=1)
                    tried += 1
            if len(due) < BATCH or tried == before:  # the rest is another process's now
                return tried
        return tried


_lock = threading.Lock()


class SenderHome(Protocol):
    """What a sender runs for and is kept on: common.runtime.context.AppContext (common/mail/
    imports nothing above it)."""

    settings: Any
    notifier: Notifier
    mail_sender: MailSender | None


def start_sender(ctx: SenderHome) -> None:
    """Start this app context's sender once (none if CITYLOGIN_MAIL_SEND_INTERVAL is 0)."""
    interval = ctx.settings.mail_send_interval
    with _lock:
        if interval <= 0 or ctx.mail_sender is not None:
            return
        sender = ctx.mail_sender = MailSender(ctx.notifier, interval=interval)
    sender.start()


def stop_sender(ctx: SenderHome) -> None:
    with _lock:
        sender, ctx.mail_sender = ctx.mail_sender, None
    if sender is not None:
        sender.stop()
