"""The admin API's view of the mail outbox (issue 65 item 2): an admin lists the undelivered mail (never its
address or contents), re-sends it with a reason (the next sender sends it) or drops it; a support operator
is refused; every re-send and drop is audited."""
from __future__ import annotations

import json
import logging

import pytest

from accounts.models import Role
from common.mail.message import Link
from common.mail.notifier import localized_message
from common.mail.sender import MailSender
from tests.support.fixtures import problem
from tests.support.operators import operator, person
from common.web.log_setup import AUDIT_LOGGER

TOKEN = "reset-token-admin-Xw2"


class Recorder:
    def __init__(self) -> None:
        self.messages: list = []

    def send(self, message) -> None:
        self.messages.append(message)


@pytest.fixture
def server(make_server):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


def undelivered_mail(ctx, user_uuid: str, email: str) -> str:
    """A reset mail to `email` that the mail server refused for good (550): kept undelivered."""
    notifier = ctx.notifier
    notifier.delivers = False
    notifier.notify(localized_message("password_reset", user_uuid=user_uuid, email=email, locale="en",
                                      link=Link("reset", TOKEN)))
    notifier.delivers = True
    mail_id = notifier.written.pop()
    entry = notifier.outbox.claim(mail_id)
    assert entry is not None
    notifier.outbox.failed(entry, error="SMTPRecipientsRefused 550", transient=False)
    return mail_id


def test_an_admin_lists_resends_and_drops_undelivered_mail(server, caplog):
    url, ctx, recorder = server
    admin, support, target = operator(url, ctx, Role.ADMIN), operator(url, ctx, Role.SUPPORT), person(url)
    email = f"{target.key_file.username}@example.com"
    mail_id = undelivered_mail(ctx, target.key_file.user_uuid, email)
    assert problem(support.request("GET", "/admin/mail"))[:2] == (403, "forbidden")
    assert problem(support.request("POST", f"/admin/mail/{mail_id}/drop", json={"reason": "x"}))[:2] == \
        (403, "forbidden")

    listed = admin.request("GET", "/admin/mail")
    assert listed.status_code == 200
    [row] = [m for m in listed.json()["mails"] if m["mail_id"] == mail_id]
    assert row["event"] == "password_reset" and row["user_uuid"] == target.key_file.user_uuid
    assert row["last_error"] == "SMTPRecipientsRefused 550" and row["given_up_at"]
    assert email not in listed.text and TOKEN not in listed.text

    assert problem(admin.request("POST", f"/admin/mail/{mail_id}/resend", json={}))[0] == 400
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    resent = admin.request("POST", f"/admin/mail/{mail_id}/resend", json={"reason": "the address is fixed"})
    assert resent.status_code == 200 and resent.json() == {"mail_id": mail_id, "event": "password_reset",
                                                           "user_uuid": target.key_file.user_uuid}
    [line] = [json.loads(r.getMessage()) for r in caplog.records
              if r.name == AUDIT_LOGGER and "mail_resend" in r.getMessage()]
    assert line["event"] == "operator_action" and line["mail_id"] == mail_id and line["reason"] == \
        "the address is fixed"
    assert MailSender(ctx.notifier, interval=1).turn() >= 1
    assert [m.email for m in recorder.messages if m.event == "password_reset"] == [email]
    assert f"/#reset={TOKEN}" in recorder.messages[-1].body

    for gone in (mail_id, "0" * 32):  # sent now; never one
        assert problem(admin.request("POST", f"/admin/mail/{gone}/drop", json={"reason": "x"}))[:2] == \
            (404, "mail_not_found")
    other = undelivered_mail(ctx, target.key_file.user_uuid, email)
    assert admin.request("POST", f"/admin/mail/{other}/drop", json={"reason": "asked for a new link"}).json()[
        "mail_id"] == other
    assert other not in admin.request("GET", "/admin/mail").text


def waiting_mail(ctx, user_uuid: str, email: str, *, tries: int) -> str:
    """A reset mail to `email` written to the outbox and tried `tries` times, each failing for a while (421)."""
    notifier = ctx.notifier
    notifier.delivers = False
    notifier.notify(localized_message("password_reset", user_uuid=user_uuid, email=email, locale="en",
                                      link=Link("reset", TOKEN)))
    notifier.delivers = True
    mail_id = notifier.written.pop()
    for _ in range(tries):
        set_times(ctx, mail_id, due_at=0)  # due again now: the backoff is not what is tested here
        entry = notifier.outbox.claim(mail_id)
        assert entry is not None
        notifier.outbox.failed(entry, error="SMTPServerDisconnected 421", transient=True)
    return mail_id


def set_times(ctx, mail_id: str, **times: int) -> None:
    store = ctx.notifier.outbox.store
    store.client.update_item(TableName=store.table, Key=store.key(mail_id),
                             UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in times),
                             ExpressionAttributeValues={f":{name}": {"N": str(v)} for name, v in times.items()})


def test_an_admin_sees_the_mail_waiting_to_go_beside_the_mail_given_up(server):
    """Issue 83 item 5: since when each waiting mail is tried, its tries, its next try and last error; a mail a
    sender holds is being tried now; the mail given up is listed apart, never as waiting."""
    url, ctx, _ = server
    admin, support, target = operator(url, ctx, Role.ADMIN), operator(url, ctx, Role.SUPPORT), person(url)
    email = f"{target.key_file.username}@example.com"
    fresh = waiting_mail(ctx, target.key_file.user_uuid, email, tries=0)
    retried = waiting_mail(ctx, target.key_file.user_uuid, email, tries=2)
    held = waiting_mail(ctx, target.key_file.user_uuid, email, tries=0)
    assert ctx.notifier.outbox.claim(held) is not None  # a sender is trying it now
    for order, mail_id in enumerate((fresh, retried, held)):  # since when each waits: the test's, not the clock's
        set_times(ctx, mail_id, since=1_000_000 + order)
    given_up = undelivered_mail(ctx, target.key_file.user_uuid, email)
    assert problem(support.request("GET", "/admin/mail"))[:2] == (403, "forbidden")

    listed = admin.request("GET", "/admin/mail")
    assert listed.status_code == 200 and email not in listed.text and TOKEN not in listed.text
    waiting = {row["mail_id"]: row for row in listed.json()["waiting"]}
    assert set(waiting) >= {fresh, retried, held} and given_up not in waiting
    assert [m["mail_id"] for m in listed.json()["mails"] if m["mail_id"] in (fresh, retried, held, given_up)] == \
        [given_up]
    assert (waiting[fresh]["attempts"], waiting[fresh]["last_error"], waiting[fresh]["trying"]) == (0, None, False)
    assert (waiting[retried]["attempts"], waiting[retried]["last_error"], waiting[retried]["trying"]) == \
        (2, "SMTPServerDisconnected 421", False)
    for mail_id in (fresh, retried):
        row = waiting[mail_id]
        assert row["event"] == "password_reset" and row["user_uuid"] == target.key_file.user_uuid
        assert row["written_at"] and row["next_try_at"]
    assert [waiting[m]["since"] for m in (fresh, retried)] == ["1970-01-12T13:46:40Z", "1970-01-12T13:46:41Z"]
    assert waiting[held]["trying"] is True and waiting[held]["next_try_at"] is None
    ids = [row["mail_id"] for row in listed.json()["waiting"]]
    assert ids.index(fresh) < ids.index(retried) < ids.index(held)  # the longest waiting first
    # A waiting mail is the sender's, not the operator's: neither re-sent nor dropped.
    for verb in ("resend", "drop"):
        assert problem(admin.request("POST", f"/admin/mail/{retried}/{verb}", json={"reason": "x"}))[:2] == \
            (404, "mail_not_found")
