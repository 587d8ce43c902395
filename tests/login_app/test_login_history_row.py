"""A successful login's history row is an entry of the login's own transaction (issue 44): a login
that commits has its row as soon as it is answered, and an attempt that does not commit leaves none."""
from __future__ import annotations

import pytest

from accounts import user_service as users
from citylogin.client.api import CityloginError, ConcurrentLoginRequired
from flows import login as login_flow
from sessions import service as sessions
from sessions.store import SessionStore
from tests.support.live import PASSWORD, add_device, register_device, settle_background


def _results(client) -> list[str]:
    return [item["result"] for item in client.get_json("/session/history")["items"]]


def test_the_success_row_is_there_when_the_login_is_answered(make_server):
    # Nothing is left for after the answer: no settle_background before reading the history.
    url, ctx = make_server(concurrency_policy="force")
    first = register_device(url)
    first.login(PASSWORD)
    second = add_device(ctx, first)
    login = second.login(PASSWORD)  # displaces the first device
    items = second.get_json("/session/history")["items"]
    assert [i["result"] for i in items] == ["success", "success"]
    newest = items[0]
    assert (newest["device_id"], newest["ip"]) == (login["device_id"], "127.0.0.1")
    assert newest["evicted"] == [{"device_id": first.key_file.device_id, "device_name": first.key_file.device_name}]
    assert items[1]["device_id"] == first.key_file.device_id and items[1]["evicted"] == []


def test_an_attempt_whose_transaction_is_cancelled_leaves_no_row(make_server, monkeypatch):
    # The presence moves between the login's read and its write: DynamoDB cancels the whole
    # transaction, history row included; the attempt read again commits, with its one row.
    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    user_uuid = client.key_file.user_uuid
    real_open, cancelled = SessionStore.open_session, []

    def presence_moves_first(self, **kwargs):
        if not cancelled:
            cancelled.append(True)
            ctx.dynamodb.update_item(TableName=ctx.tables.presence, Key=SessionStore.presence_key(user_uuid),
                                     UpdateExpression="SET #v = #v + :one", ExpressionAttributeNames={"#v": "version"},
                                     ExpressionAttributeValues={":one": {"N": "1"}})
        return real_open(self, **kwargs)
    monkeypatch.setattr(SessionStore, "open_session", presence_moves_first)
    client.login(PASSWORD)
    assert cancelled and _results(client) == ["success", "success"]


def test_a_login_refused_at_its_transaction_has_no_success_row(make_server, monkeypatch):
    # An operator locks the account between the login's read and its transaction: the lock refuses
    # the write, and the attempt is in the history as locked_out only.
    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    user_uuid = client.key_file.user_uuid
    take_seat = sessions.take_seat

    def lock_first(app_ctx, seats, **kwargs):
        users.lock_account(app_ctx, user_uuid=user_uuid)
        return take_seat(app_ctx, seats, **kwargs)
    monkeypatch.setattr(login_flow.sessions, "take_seat", lock_first)
    with pytest.raises(CityloginError) as refused:
        client.login(PASSWORD)
    assert (refused.value.status, refused.value.code) == (403, "account_locked")
    settle_background(ctx)  # the locked_out row is a failure's: written after the answer
    rows = sessions.history_page(ctx, user_uuid=user_uuid, limit=10, cursor=None)[0]
    assert [r["result"] for r in rows] == ["locked_out", "success"]


def test_the_question_in_use_elsewhere_answered_continue_is_not_a_refusal(make_server):
    # Issue 54: the 409's row is written before the answer; a confirm marks it continued. A question
    # left unanswered stays a refusal, and so does the next one, answered or not.
    url, ctx = make_server()
    laptop = register_device(url)
    laptop.login(PASSWORD)
    phone = add_device(ctx, laptop)
    with pytest.raises(ConcurrentLoginRequired):
        phone.login(PASSWORD)                    # asked, and left unanswered
    with pytest.raises(ConcurrentLoginRequired) as asked:
        phone.login(PASSWORD)                    # asked again, and answered "continue"
    phone.confirm(asked.value.confirm_token)
    settle_background(ctx)                       # the mark is written after the confirm's answer
    items = phone.get_json("/session/history")["items"]
    assert [(i["result"], i.get("continued")) for i in items] == [
        ("success", None), ("rejected_concurrent", True), ("rejected_concurrent", None), ("success", None)]
    assert items[0]["evicted"] == [{"device_id": laptop.key_file.device_id,
                                    "device_name": laptop.key_file.device_name}]
    assert {i["device_id"] for i in items[:3]} == {phone.key_file.device_id}


def test_a_policy_that_refuses_outright_writes_a_refusal(make_server):
    url, ctx = make_server(concurrency_policy="reject")
    laptop = register_device(url)
    laptop.login(PASSWORD)
    phone = add_device(ctx, laptop)
    with pytest.raises(CityloginError) as refused:
        phone.login(PASSWORD)
    assert (refused.value.status, refused.value.code) == (409, "concurrent_login_rejected")
    settle_background(ctx)   # a refusal's row is written after its answer
    items = laptop.get_json("/session/history")["items"]
    assert [(i["result"], i.get("continued")) for i in items] == [("rejected_concurrent", None), ("success", None)]
