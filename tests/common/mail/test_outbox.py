"""The mail outbox on DynamoDB Local (issue 65 item 2): a mail is written sealed before it is tried, sent
once and its contents erased; one that does not go is tried again with a doubling, jittered backoff until
the give-up time, then kept undelivered (one ERROR without the address, subject or body, a metric), and
the operator re-sends or drops it; two senders on one table send each mail once; a sender that dies
holding a mail's lease leaves it to another once the lease is over."""
from __future__ import annotations

import logging
import threading
import time

import pytest
from prometheus_client import REGISTRY

from accounts.models import Role
from operators import mail as operator_mail
from operators.service import Operator, OperatorForbidden
from common.mail.message import Link, Mail
from common.mail.notifier import Notifier, localized_message
from common.mail.outbox import Outbox, Timing
from common.mail.outbox_store import DUE, SENT, UNDELIVERED, OutboxStore
from common.mail.sender import MailSender
from tests.support.mailbox import Mailbox
from tests.support.waiting import wait_until

TOKEN = "reset-token-Hq3ZvP8"
ADDRESS = "outbox-person@example.org"
PUBLIC_URL = "https://id.example.org"
ADMIN = Operator(role=Role.ADMIN, name="ops", cli=True)


Recorder = Mailbox  # a back end that keeps what it is given (thread-safe)


class Refusing:
    """A mail server that is down: every connection refused."""

    remote = False  # tried inline, so a test owns every try

    def send(self, message) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ctx(make_server):
    _, context = make_server(public_url=PUBLIC_URL)
    return context


def reset_mail(user_uuid: str = "u-outbox") -> Mail:
    return localized_message("password_reset", user_uuid=user_uuid, email=ADDRESS, locale="en",
                             link=Link("reset", TOKEN))


def notifier_on(ctx, backend, *, clock=time.time, timing: Timing | None = None) -> Notifier:
    """A notifier of its own (another process, as far as the outbox can tell) on the context's table."""
    notifier = Notifier(backend, attempts=1)
    outbox = Outbox(ctx.dynamodb, ctx.tables.mail_outbox, secrets=ctx.refresh_secrets, clock=clock,
                    timing=timing or Timing(retry_seconds=10, retry_max_seconds=40, give_up_seconds=3600))
    notifier.attach(outbox, render=lambda mail: mail.render(PUBLIC_URL))
    notifier.test_ids = []  # type: ignore[attr-defined]
    enqueue = outbox.enqueue

    def recorded(mail: Mail, *, leased: bool):
        entry = enqueue(mail, leased=leased)
        notifier.test_ids.append(entry.mail_id)  # type: ignore[attr-defined]
        return entry
    outbox.enqueue = recorded  # type: ignore[method-assign]
    return notifier


def written_by(notifier: Notifier) -> list[str]:
    return notifier.test_ids  # type: ignore[attr-defined]


def raw_item(ctx, mail_id: str) -> dict:
    return ctx.dynamodb.get_item(TableName=ctx.tables.mail_outbox, Key={"mail_id": {"S": mail_id}},
                                 ConsistentRead=True)["Item"]


def item(ctx, mail_id: str) -> dict:
    found = OutboxStore(ctx.dynamodb, ctx.tables.mail_outbox).get(mail_id)
    assert found is not None
    return found


def test_a_mail_is_sealed_in_the_outbox_then_sent_once_and_its_contents_erased(ctx):
    notifier = notifier_on(ctx, recorder := Recorder())
    notifier.delivers = False  # an operator's command: written only
    notifier.notify(reset_mail())
    [mail_id] = notifier.written
    stored = raw_item(ctx, mail_id)
    assert stored["state"] == {"S": DUE} and recorder.messages == []
    for secret in (TOKEN, ADDRESS, "#reset="):
        assert secret not in repr(stored)  # sealed: the token and the address are nowhere in clear

    notifier.delivers = True
    sender = MailSender(notifier, interval=1)
    wait_until(lambda: sender.turn(), what="the due mail claimed and sent")
    [message] = recorder.messages
    assert message.email == ADDRESS and f"{PUBLIC_URL}/#reset={TOKEN}" in message.body
    sent = item(ctx, mail_id)
    assert sent["state"] == SENT and not {"sealed", "sealed_kid", "queue"} & set(sent)
    assert sender.turn() == 0 and len(recorder.messages) == 1  # never again


def test_a_mail_that_does_not_go_is_retried_with_backoff_then_kept_undelivered(ctx, caplog):
    clock = Clock()
    failing = notifier_on(ctx, Refusing(), clock=clock)
    caplog.set_level(logging.WARNING, logger="citylogin.notify")
    undelivered_before = REGISTRY.get_sample_value("citylogin_mail_undelivered_total") or 0
    failing.notify(reset_mail())  # the first try, at once: refused
    [mail_id] = written_by(failing)
    delays, written = [], clock.now
    for expected in (10, 20, 40, 40):  # doubling from CITYLOGIN_MAIL_RETRY_SECONDS, capped at its maximum
        due = float(item(ctx, mail_id)["due_at"])
        delays.append(due - clock.now)
        assert expected * 0.8 - 0.01 <= due - clock.now <= expected * 1.2 + 0.01, (expected, due - clock.now)
        assert _claim_and_try(ctx, failing, mail_id, at=clock, when=due - 1) is False  # not due yet: untouched
        assert _claim_and_try(ctx, failing, mail_id, at=clock, when=due) is True
    assert len(set(delays)) == len(delays)  # jittered
    assert item(ctx, mail_id)["state"] == DUE and int(item(ctx, mail_id)["attempts"]) == 5

    clock.now = written + 3600  # the give-up time: this try is the last
    assert _claim_and_try(ctx, failing, mail_id, at=clock, when=clock.now) is True
    kept = item(ctx, mail_id)
    assert kept["state"] == UNDELIVERED and kept["last_error"] == "ConnectionRefusedError" and "sealed" in kept
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"mail {mail_id} (password_reset) undelivered: ConnectionRefusedError; kept for the operator "
        "(citylogin mail list, resend, drop)"]
    assert TOKEN not in caplog.text and ADDRESS not in caplog.text and "Reset" not in caplog.text
    assert REGISTRY.get_sample_value("citylogin_mail_undelivered_total") == undelivered_before + 1

    listed = operator_mail.undelivered(ctx, operator=ADMIN)
    assert [row["mail_id"] for row in listed if row["mail_id"] == mail_id] == [mail_id]
    assert operator_mail.resend(ctx, operator=ADMIN, mail_id=mail_id, reason="server fixed")["event"] == \
        "password_reset"
    working = notifier_on(ctx, recorder := Recorder())
    assert _claim_and_try(ctx, working, mail_id, at=None, when=None) is True
    assert [m.event for m in recorder.messages] == ["password_reset"] and item(ctx, mail_id)["state"] == SENT
    with pytest.raises(operator_mail.MailNotFound):  # sent: nothing to re-send or drop any more
        operator_mail.resend(ctx, operator=ADMIN, mail_id=mail_id, reason="again")


def test_an_undelivered_mail_is_dropped_by_an_admin_with_a_reason(ctx):
    clock = Clock()
    refused_for_good = notifier_on(ctx, Refusing(), clock=clock,
                                   timing=Timing(retry_seconds=1, retry_max_seconds=1, give_up_seconds=5))
    refused_for_good.notify(reset_mail())
    [mail_id] = written_by(refused_for_good)
    assert item(ctx, mail_id)["state"] == DUE
    assert _claim_and_try(ctx, refused_for_good, mail_id, at=clock, when=clock.now + 6) is True
    assert item(ctx, mail_id)["state"] == UNDELIVERED
    with pytest.raises(operator_mail.ReasonRequired):
        operator_mail.drop(ctx, operator=ADMIN, mail_id=mail_id, reason=" ")
    with pytest.raises(OperatorForbidden):
        operator_mail.drop(ctx, operator=Operator(role=Role.SUPPORT, name="s", cli=True), mail_id=mail_id,
                           reason="no")
    operator_mail.drop(ctx, operator=ADMIN, mail_id=mail_id, reason="the person left")
    assert OutboxStore(ctx.dynamodb, ctx.tables.mail_outbox).get(mail_id) is None
    for bad in (mail_id, "not-an-id", "x" * 500, ""):
        with pytest.raises(operator_mail.MailNotFound):
            operator_mail.drop(ctx, operator=ADMIN, mail_id=bad, reason="again")


def test_two_senders_on_one_table_send_each_mail_exactly_once(ctx):
    writer = notifier_on(ctx, Recorder())
    writer.delivers = False
    for n in range(30):
        writer.notify(reset_mail(user_uuid=f"u-two-{n}"))
    written = set(writer.written)
    recorders = [Recorder(), Recorder()]
    senders = [MailSender(notifier_on(ctx, recorder), interval=1) for recorder in recorders]
    start = threading.Barrier(2)

    def send(sender: MailSender) -> None:
        start.wait()
        while any(item(ctx, mail_id)["state"] != SENT for mail_id in written):
            sender.turn()

    threads = [threading.Thread(target=send, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    sent = [m.user_uuid for recorder in recorders for m in recorder.messages if m.user_uuid.startswith("u-two-")]
    assert sorted(sent) == sorted(f"u-two-{n}" for n in range(30))  # each once, whichever sender sent it


def test_a_mail_whose_sender_died_holding_its_lease_goes_from_another_after_the_lease(ctx):
    clock = Clock()
    timing = Timing(retry_seconds=10, retry_max_seconds=40, give_up_seconds=3600, lease_seconds=300)
    dead, alive = notifier_on(ctx, Recorder(), clock=clock, timing=timing), notifier_on(ctx, other := Recorder(),
                                                                                      clock=clock, timing=timing)
    dead.delivers = False
    dead.notify(reset_mail(user_uuid="u-lease"))
    [mail_id] = dead.written
    assert dead.outbox is not None and alive.outbox is not None
    assert dead.outbox.claim(mail_id) is not None  # claimed, then its process dies before it sends
    clock.now += 299
    assert alive.outbox.claim(mail_id) is None  # still the dead one's
    clock.now += 2
    entry = alive.outbox.claim(mail_id)
    assert entry is not None and entry.attempts == 2
    assert alive.deliver(entry, attempts=1) and [m.user_uuid for m in other.messages] == ["u-lease"]


def test_account_deletion_deletes_the_accounts_mail_but_the_deletion_notice(ctx):
    writer = notifier_on(ctx, Recorder())
    writer.delivers = False
    for event in ("password_reset", "account_deleted", "new_sign_in"):
        writer.notify(Mail(event=event, user_uuid="u-deleted", email=ADDRESS, texts=event, locale="en"))
    store = OutboxStore(ctx.dynamodb, ctx.tables.mail_outbox)
    assert store.delete_all_of_user("u-deleted", keep_event="account_deleted") == 2
    assert [i["event"] for i in store.items_of_user("u-deleted")] == ["account_deleted"]




def _claim_and_try(ctx, notifier: Notifier, mail_id: str, *, at: Clock | None, when: float | None) -> bool:
    """Whether the mail was claimed (and tried) with the clock at `when`."""
    if at is not None and when is not None:
        at.now = when
    assert notifier.outbox is not None
    entry = notifier.outbox.claim(mail_id)
    if entry is None:
        return False
    notifier.deliver(entry, attempts=1)
    return True


def test_a_mail_this_process_cannot_render_is_kept_undelivered_not_retried(ctx):
    notifier = notifier_on(ctx, recorder := Recorder())
    notifier.attach(notifier.outbox, render=lambda mail: mail.render(None))  # no public URL for the link
    notifier.notify(reset_mail(user_uuid="u-unrendered"))
    [mail_id] = written_by(notifier)
    kept = item(ctx, mail_id)
    assert (kept["state"], kept["last_error"]) == (UNDELIVERED, "not rendered (ValueError)") and not recorder.messages
