"""A person's data export never sends a partial document (docs/security/storage.md, "A person's data
export"): an account being deleted answers 409 account_deleting, one whose deletion finished 404 (and
its own sessions 401: they ended with it), one whose deletion begins while the export reads it 409, and
a DynamoDB failure at any one of the export's calls 503. The reads are Queries and reads by key: no
Scan."""
from __future__ import annotations

import threading

import pytest
from botocore.exceptions import EndpointConnectionError

from accounts import user_service as users
from accounts.models import Role
from common.database.dynamo_client import DATA_PLANE
from flows import data_export, deletion
from tests.support.fixtures import problem
from tests.support.live import settle_background
from tests.support.operators import operator, person


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


DATA_CALLS = {_snake(op) for op in DATA_PLANE}


class WatchedClient:
    """The app's DynamoDB client, noting each data-plane call by name; `before(n, name)` runs before the
    n-th (and may raise, as a lost connection)."""

    def __init__(self, client, before=None) -> None:
        self._client, self._before, self.calls = client, before, []
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        call = getattr(self._client, name)
        if name not in DATA_CALLS:
            return call

        def watched(**params):
            with self._lock:
                self.calls.append(name)
                number = len(self.calls)
            if self._before:
                self._before(number, name)
            return call(**params)
        return watched


@pytest.fixture
def server(make_server):
    url, ctx = make_server()
    return url, ctx


def export_of(client):
    return client.request("GET", "/account/export")


def begin_deletion(ctx, client) -> None:
    assert users.begin_deletion(ctx, user_uuid=client.key_file.user_uuid, holds_admin=False)


def test_an_account_being_deleted_answers_409_and_a_deleted_one_404(server):
    url, ctx = server
    support, target = operator(url, ctx, Role.SUPPORT), person(url)
    begin_deletion(ctx, target)  # the one write that starts it; its sessions still live a moment
    assert problem(export_of(target))[:2] == (409, "account_deleting")
    in_japanese = target.request("GET", "/account/export", headers={"Accept-Language": "ja"})
    assert problem(in_japanese)[:2] == (409, "account_deleting") and "削除中" in in_japanese.json()["detail"]
    assert problem(support.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/export",
                                   json={"reason": "access request"}))[:2] == (404, "not_found")

    assert deletion.finish_deletion(ctx, user_uuid=target.key_file.user_uuid)
    settle_background(ctx)
    assert problem(export_of(target))[:2] == (401, "session_revoked")  # it ended with the account
    with pytest.raises(data_export.ExportAccountNotFound):
        data_export.export(ctx, user_uuid=target.key_file.user_uuid)  # the tombstone is nobody's data
    assert problem(support.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/export",
                                   json={"reason": "access request"}))[:2] == (404, "not_found")


def test_a_deletion_that_begins_while_the_export_reads_answers_409(server):
    url, ctx = server
    target = person(url)
    healthy = ctx.dynamodb
    started = threading.Event()

    def delete_on_first_query(number: int, name: str) -> None:
        if name == "query" and not started.is_set():
            started.set()
            ctx.dynamodb = healthy
            begin_deletion(ctx, target)
    ctx.dynamodb = WatchedClient(healthy, delete_on_first_query)
    try:
        answer = export_of(target)
    finally:
        ctx.dynamodb = healthy
    assert started.is_set()
    assert problem(answer)[:2] == (409, "account_deleting")


def test_a_dynamodb_failure_at_any_call_of_the_export_is_a_503_and_no_document(server):
    url, ctx = server
    target = person(url)
    healthy = ctx.dynamodb
    ctx.dynamodb = watched = WatchedClient(healthy)
    try:
        assert export_of(target).status_code == 200
    finally:
        ctx.dynamodb = healthy
    settle_background(ctx)
    assert "scan" not in watched.calls and "query" in watched.calls, watched.calls
    calls = len(watched.calls)
    assert calls > 8, watched.calls

    for cut in range(1, calls + 1):
        def lose(number: int, name: str, cut=cut) -> None:
            if number == cut:
                raise EndpointConnectionError(endpoint_url="http://dynamodb.cut.example")
        ctx.dynamodb = WatchedClient(healthy, lose)
        try:
            answer = export_of(target)
        finally:
            ctx.dynamodb = healthy
        settle_background(ctx)
        assert problem(answer)[:2] == (503, "service_unavailable"), (cut, answer.text[:300])
        assert "users" not in answer.text
    assert export_of(target).status_code == 200
