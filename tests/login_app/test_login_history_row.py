"""A successful login's history row is an entry of the login's own transaction (issue 44): a login
that commits has its row as soon as it is answered, and an attempt that does not commit leaves none."""
from __future__ import annotations

import pytest

from accounts import user_service as users
from citylogin.client import CityloginError
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
