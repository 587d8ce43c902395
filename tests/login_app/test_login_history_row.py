"""The success row of the login history is written after the login's transaction, off the
response path (issue 12): a failed write is retried, and a row that still cannot be written goes
to the audit stream whole, so no login is ever missing from the record."""
from __future__ import annotations

import json

from botocore.exceptions import ClientError

from sessions.history_store import HistoryStore
from tests.support.live import PASSWORD, register_device, settle_background

THROTTLED = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                        "PutItem")


def test_a_refused_history_write_is_retried(make_server, monkeypatch):
    url, ctx = make_server()
    client = register_device(url)
    real_record, refusals = HistoryStore.record, []

    def refuse_once(self, **row):
        if not refusals:
            refusals.append(row)
            raise THROTTLED
        return real_record(self, **row)
    monkeypatch.setattr(HistoryStore, "record", refuse_once)
    client.login(PASSWORD)
    settle_background(ctx)
    assert refusals and [i["result"] for i in client.get_json("/session/history")["items"]] == ["success"]


def test_a_row_that_cannot_be_written_goes_to_the_audit_stream(make_server, monkeypatch, caplog):
    url, ctx = make_server()
    client = register_device(url)

    def refuse(self, **row):
        raise THROTTLED
    monkeypatch.setattr(HistoryStore, "record", refuse)
    login = client.login(PASSWORD)
    settle_background(ctx)
    audited = [json.loads(r.getMessage()) for r in caplog.records if r.name == "citylogin.audit"
               and '"login_history_unwritten"' in r.getMessage()]
    assert len(audited) == 1, caplog.text
    assert audited[0]["user_uuid"] == login["user_uuid"] and audited[0]["device_id"] == login["device_id"]
    assert audited[0]["result"] == "success" and audited[0]["ip"] == "127.0.0.1"
    assert login["access_token"] not in caplog.text and login["refresh_token"] not in caplog.text
