"""An operator's account page (SPEC §15) in few DynamoDB calls: the person's records by key go in the
batch read of the operator's own session, the devices' and sessions' Queries start beside it, then the
lockout (by the username) and the passkeys (only when their count item says there are any). The page
shows what it showed when each panel was read on its own, and a failing read is a 503."""
from __future__ import annotations

import secrets

import pytest

from citylogin.client import Client
from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import user_service as users
from accounts.models import PasskeyRecord, Role
from accounts.passkey_store import PasskeyStore
from common import thread_kind
from common.batch_read import read_together
from common.guarded_write import GuardedWrite, write_all
from common.timefmt import iso_from_epoch
from devices import service as devices
from flows import operators
from sessions import service as sessions
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, settle_background
from tests.support.operators import operator, person

pytestmark = pytest.mark.slow  # servers, operators and faults per test: the whole suite runs it (the fast tier's time)

PAGE_BUDGET = 5  # the operator's session and DPoP proof included


class RequestCalls(CallCounter):
    """CallCounter without the process's scheduled pollers (the app registry's, the feeds')."""

    def _count(self, model, params, **kwargs):
        if thread_kind.current() != thread_kind.SCHEDULED:
            super()._count(model, params, **kwargs)


def store(ctx) -> PasskeyStore:
    return PasskeyStore(ctx.dynamodb, ctx.tables.passkeys)


def add_passkey(ctx, user_uuid: str, name: str, *, day: int = 1) -> None:
    """A passkey as passkey_service.add_passkey stores it: the credential and its count, in one transaction."""
    record = PasskeyRecord(user_uuid=user_uuid, credential_id=secrets.token_urlsafe(16), public_key=b"k",
                           sign_count=0, name=name, created_at=f"2026-01-{day:02d}T03:04:05+00:00", last_used_at=None,
                           backed_up=False)
    write_all(ctx.dynamodb, [GuardedWrite(store(ctx).put_item(record), RuntimeError),
                             GuardedWrite(store(ctx).count_item(user_uuid, delta=1, limit=passkeys.MAX_PASSKEYS),
                                          RuntimeError)])


def page_panel_by_panel(ctx, user_uuid: str) -> dict:
    """The page as it was read before it was read with the operator's session: each panel on its own."""
    user = users.get_user(ctx, user_uuid=user_uuid)
    locked_until = read_together(ctx.dynamodb, {"l": credentials.username_lock_read(ctx, username=user.username)})["l"]
    recent, _ = sessions.session_page(ctx, user_uuid=user_uuid, limit=20, cursor=None, include_ended=True)
    return {
        "user_uuid": user.user_uuid, "username": user.username, "email": user.email, "locked": bool(user.locked),
        "roles": sorted(user.roles or ()), "created_at": user.created_at, "email_verified": user.email_verified,
        "locale": user.locale, "password_locked_until": iso_from_epoch(locked_until) if locked_until else None,
        "limit": user.max_concurrent_devices, "default_limit": ctx.settings.max_concurrent_devices,
        "devices": [{"device_id": d.device_id, "device_name": d.device_name, "device_class": d.device_class,
                     "status": d.status, "cert_expires_at": d.cert_expires_at, "registered_at": d.registered_at,
                     "last_login_at": d.last_login_at, "logged_in": d.active}
                    for d in devices.list_devices(ctx, user_uuid=user_uuid, current_device_id="").devices],
        "sessions": [{"session_id": s.session_id, "device_id": s.device_id, "device_name": s.device_name,
                      "created_at": s.created_at, "last_seen_at": iso_from_epoch(s.last_seen_epoch),
                      **dict(zip(("status", "revoked_reason"), sessions.session_status(ctx, s), strict=True)),
                      "ip": s.ip, "user_agent": s.user_agent} for s in recent],
        "passkeys": [{"name": p.name, "created_at": p.created_at, "last_used_at": p.last_used_at}
                     for p in passkeys.list_passkeys(ctx, user_uuid=user_uuid)]}


@pytest.fixture
def page_server(make_server):
    url, ctx = make_server()
    counter = RequestCalls(ctx.dynamodb)
    viewer = operator(url, ctx, Role.VIEWER)
    target = person(url)
    second = add_device(ctx, target, name="Second phone")
    second.login(PASSWORD, force=True)
    target.login(PASSWORD, force=True)  # an ended session on the page too
    return url, ctx, counter, viewer, target


def counted_page(ctx, counter: RequestCalls, viewer: Client, user_uuid: str) -> tuple[dict, int]:
    settle_background(ctx)  # the writes earlier requests left for after their answers
    counter.take()
    answer = viewer.request("GET", f"/admin/accounts/{user_uuid}")
    assert answer.status_code == 200, answer.text
    calls = counter.take()
    assert calls["Scan"] == 0 and sum(calls.values()) <= PAGE_BUDGET + 1, calls  # + 1: the passkeys' Query
    return answer.json(), sum(calls.values())


def test_the_page_costs_five_calls_and_shows_what_each_panel_shows(page_server):
    url, ctx, counter, viewer, target = page_server
    user_uuid = target.key_file.user_uuid
    for _ in range(ctx.settings.login_max_failures):  # the lockout panel has something to say
        with pytest.raises(Exception):  # noqa: B017 - 401, then 429
            target.login("wrong password 1")
    page, calls = counted_page(ctx, counter, viewer, user_uuid)
    assert calls <= PAGE_BUDGET, calls
    assert page == page_panel_by_panel(ctx, user_uuid)
    assert page["password_locked_until"] and len(page["devices"]) == 2 and page["passkeys"] == []
    assert {s["status"] for s in page["sessions"]} == {"active", "revoked"}
    # The CLI (and an app's credential, an action's answer) reads it without the operator's session
    cli = operators.Operator(role=Role.ADMIN, name="test", cli=True)
    assert operators.account_page(ctx, operator=cli, user_uuid=user_uuid).model_dump() == page

    own, calls = counted_page(ctx, counter, viewer, viewer.key_file.user_uuid)
    assert calls <= PAGE_BUDGET and own["roles"] == ["viewer"]
    assert own == page_panel_by_panel(ctx, viewer.key_file.user_uuid)
    for missing in ("00000000-0000-4000-8000-000000000000", "not%20an%20id"):
        assert problem(viewer.request("GET", f"/admin/accounts/{missing}"))[:2] == (404, "not_found")
    nobody = operator(url, ctx, None)
    refused = nobody.request("GET", f"/admin/accounts/{user_uuid}")
    assert problem(refused)[:2] == (403, "forbidden") and target.key_file.username not in refused.text


def test_passkeys_are_queried_only_when_the_count_has_some(page_server):
    url, ctx, counter, viewer, target = page_server
    user_uuid = target.key_file.user_uuid
    _, without = counted_page(ctx, counter, viewer, user_uuid)
    add_passkey(ctx, user_uuid, "Laptop", day=1)
    add_passkey(ctx, user_uuid, "Key", day=2)
    page, calls = counted_page(ctx, counter, viewer, user_uuid)
    assert calls == without + 1  # the passkeys' Query
    assert [p["name"] for p in page["passkeys"]] == ["Laptop", "Key"]
    assert page == page_panel_by_panel(ctx, user_uuid)
    passkeys.delete_all_passkeys(ctx, user_uuid=user_uuid)
    page, calls = counted_page(ctx, counter, viewer, user_uuid)
    assert calls == without and page["passkeys"] == []


def test_a_failing_query_of_the_page_is_a_503(make_server, dynamodb_endpoint):
    # The devices' and sessions' Queries run on the background pool: their failure is the request's
    url, ctx = make_server()
    with DynamoFaults(dynamodb_endpoint) as faults:
        behind, _ = make_server(dynamodb_endpoint_url=faults.url, create_tables=False)
        viewer = operator(url, ctx, Role.VIEWER)
        target = person(url)
        there = Client(behind, key_file=viewer.key_file)
        there.use_tokens(viewer.tokens())
        page = f"/admin/accounts/{target.key_file.user_uuid}"
        faults.fail(Shape.INTERNAL_SERVER_ERROR, operations={"Query"})
        refused = there.request("GET", page)
        assert problem(refused)[:2] == (503, "service_unavailable")
        assert int(refused.headers["Retry-After"]) > 0
        faults.clear()
        assert there.request("GET", page).status_code == 200


def test_removing_every_passkey_keeps_the_count_exact_when_one_is_added_meanwhile(make_server):
    # A password reset removes every passkey while the owner, signed in anew, may be adding one: the
    # count item must still say how many there are, since the page lists none on a count of 0.
    url, ctx = make_server()
    user_uuid = person(url).key_file.user_uuid
    add_passkey(ctx, user_uuid, "Old")
    added: list[str] = []

    def add_one_after_the_first_read(parsed, **_):
        if not added and any("credential_id" in item for item in parsed.get("Items", [])):
            added.append("New")
            add_passkey(ctx, user_uuid, "New")
    events = ctx.dynamodb.meta.events
    events.register("after-call.dynamodb.Query", add_one_after_the_first_read)
    try:
        passkeys.delete_all_passkeys(ctx, user_uuid=user_uuid)
    finally:
        events.unregister("after-call.dynamodb.Query", add_one_after_the_first_read)
    assert added
    left = len(passkeys.list_passkeys(ctx, user_uuid=user_uuid))
    assert read_together(ctx.dynamodb, {"n": passkeys.passkey_count_read(ctx, user_uuid=user_uuid)})["n"] == left
