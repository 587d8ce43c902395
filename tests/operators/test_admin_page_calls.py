"""An operator's account page (SPEC §15) in few DynamoDB calls: the person's records by key go in the
batch read of the operator's own session (with the lockout, once the process knows the username it is
keyed by), the devices' and sessions' Queries start beside it, then the passkeys (only when their count
item says there are any) and on the process's first page of the account the lockout. The page shows
what it showed when each panel was read on its own, its JSON keeps its fields in their order, a spent
DPoP proof gets no page, and a failing read is a 503."""
from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import user_service as users
from accounts.models import PasskeyRecord, Role
from accounts.passkey_store import PasskeyStore
from citylogin.client.api import Client
from common import thread_kind
from common.timefmt import iso_from_epoch
from common.database.batch_read import read_together
from common.database.guarded_write import GuardedWrite, write_all
from devices import service as devices
from operators import service as operators
from operators.usernames import recent_usernames
from sessions import service as sessions
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.support.dynamo_faults import Shape
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, settle_background
from tests.support.operators import operator, operator_behind_faults, person

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
    lock = credentials.username_lock_read(ctx.tables, username=user.username, now=ctx.epoch())
    locked_until = read_together(ctx.dynamodb, {"l": lock})["l"]
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
                      **dict(zip(("status", "revoked_reason"), sessions.session_status(ctx.settings, s, ctx.epoch()),
                                 strict=True)),
                      "ip": s.ip, "user_agent": s.user_agent} for s in recent],
        "passkeys": [{"name": p.name, "created_at": p.created_at, "last_used_at": p.last_used_at}
                     for p in passkeys.list_passkeys(ctx, user_uuid=user_uuid)],
        "imported_from": user.imported_from, "imported_at": user.imported_at,
        "password_upgraded": user.password_upgraded}


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


def test_later_pages_read_the_lockout_with_the_account_and_it_is_never_stale(page_server):
    # The first page of an account in a process learns its username; later ones read its lockout in
    # the batch of the operator's session (one call fewer), strongly consistent like the account itself.
    url, ctx, counter, viewer, target = page_server
    user_uuid = target.key_file.user_uuid
    first, first_calls = counted_page(ctx, counter, viewer, user_uuid)
    assert first["password_locked_until"] is None
    for _ in range(ctx.settings.login_max_failures):
        with pytest.raises(Exception):  # noqa: B017 - 401, then 429
            target.login("wrong password 1")
    locked, calls = counted_page(ctx, counter, viewer, user_uuid)
    assert calls == first_calls - 1, (calls, first_calls)
    assert locked["password_locked_until"] and locked == page_panel_by_panel(ctx, user_uuid)
    credentials.clear_failures(ctx, username=target.key_file.username)
    unlocked, calls = counted_page(ctx, counter, viewer, user_uuid)
    assert calls == first_calls - 1 and unlocked["password_locked_until"] is None


def test_a_username_remembered_wrong_still_shows_the_accounts_own_lockout(page_server):
    # What the process remembers only says which lockout to read: checked against the account read
    # beside it, a wrong one (another, locked username) is never shown, and the right one is read.
    url, ctx, counter, viewer, target = page_server
    user_uuid = target.key_file.user_uuid
    other = person(url)
    for _ in range(ctx.settings.login_max_failures):
        with pytest.raises(Exception):  # noqa: B017 - 401, then 429
            other.login("wrong password 1")
    recent_usernames(ctx).remember(user_uuid, other.key_file.username)
    page, calls = counted_page(ctx, counter, viewer, user_uuid)
    assert page["password_locked_until"] is None and page == page_panel_by_panel(ctx, user_uuid)
    assert recent_usernames(ctx).get(user_uuid) == target.key_file.username
    again, fewer = counted_page(ctx, counter, viewer, user_uuid)
    assert again == page and fewer == calls - 1


def test_the_pages_json_keeps_its_fields_in_their_order(page_server):
    # The answer's JSON text, not only its values: every panel filled (devices, live and ended
    # sessions, passkeys, a locked password), each object's fields as the models list them.
    url, ctx, counter, viewer, target = page_server
    user_uuid = target.key_file.user_uuid
    add_passkey(ctx, user_uuid, "Laptop")
    for _ in range(ctx.settings.login_max_failures):
        with pytest.raises(Exception):  # noqa: B017 - 401, then 429
            target.login("wrong password 1")
    for _ in range(2):  # the process's first page of the account, then a later one
        answer = viewer.request("GET", f"/admin/accounts/{user_uuid}")
        assert answer.status_code == 200, answer.text
        page = json.loads(answer.text, object_pairs_hook=list)
        fields = [name for name, _ in page]
        assert fields == ["user_uuid", "username", "email", "locked", "roles", "created_at", "email_verified",
                          "locale", "password_locked_until", "limit", "default_limit", "devices", "sessions",
                          "passkeys", "imported_from", "imported_at", "password_upgraded"]
        panels = dict(page)
        assert [[name for name, _ in d] for d in panels["devices"]] == [[
            "device_id", "device_name", "device_class", "status", "cert_expires_at", "registered_at",
            "last_login_at", "logged_in"]] * 2
        assert {tuple(name for name, _ in s) for s in panels["sessions"]} == {(
            "session_id", "device_id", "device_name", "created_at", "last_seen_at", "status", "revoked_reason",
            "ip", "user_agent")}
        assert [[name for name, _ in p] for p in panels["passkeys"]] == [["name", "created_at", "last_used_at"]]
        assert answer.json() == page_panel_by_panel(ctx, user_uuid)
        assert answer.json()["password_locked_until"]
        assert {s["status"] for s in answer.json()["sessions"]} == {"active", "revoked"}


def test_a_replayed_proof_gets_no_page(page_server):
    # The operator's DPoP proof is spent once, beside the session's read: the same proof again (at
    # once from two threads, or later) is refused, and nothing of the page is in the refusal.
    url, ctx, counter, viewer, target = page_server
    page_url = f"{url}/admin/accounts/{target.key_file.user_uuid}"
    for _ in range(2):  # the process's first page of the account, then a later one
        headers = viewer.auth_headers("GET", page_url)
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda sent: requests.get(page_url, headers=sent, timeout=30), [headers] * 2))
        answers.append(requests.get(page_url, headers=headers, timeout=30))
        assert sorted(a.status_code for a in answers) == [200, 401, 401], [a.text for a in answers]
        for refused in (a for a in answers if a.status_code == 401):
            assert problem(refused)[:2] == (401, "invalid_dpop_proof")
            assert target.key_file.username not in refused.text and target.key_file.device_id not in refused.text


def test_passkeys_are_queried_only_when_the_count_has_some(page_server):
    url, ctx, counter, viewer, target = page_server
    user_uuid = target.key_file.user_uuid
    counted_page(ctx, counter, viewer, user_uuid)  # the process's first page of it reads the lockout after
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
    with operator_behind_faults(make_server, dynamodb_endpoint, Role.VIEWER) as (faults, _, target, there):
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
    assert read_together(ctx.dynamodb, {"n": passkeys.passkey_count_read(ctx.tables, user_uuid=user_uuid)})["n"] == left
