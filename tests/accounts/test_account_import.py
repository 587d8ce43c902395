"""The import's writes (SPEC §17) on DynamoDB Local, from rows built here as the readers make them: each
account a users item with its claims, all or nothing; a rerun finds what the first wrote and changes nothing;
a name a live account holds is never taken over (refused with where and reason); --dry-run writes nothing;
--update changes only what differs and never a password set in citylogin; batches of accounts per
transaction, account by account when one is cancelled; no hash in the report, the audit or the logs."""
from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import replace

import pytest

from accounts import user_service as users
from accounts.import_rows import ImportedIdentity, ImportRow, RefusalReason, RowRefusal
from accounts.import_store import ImportStore, NewAccount
from accounts.models import UserRecord
from accounts.user_store import email_claim, username_claim
from citylogin.app import create_app
from common.crypto.passwords import IMPORTED_PREFIX
from common.database import dynamo
from federation import identities, providers
from flows.account_import import ImportOptions, import_accounts
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.conftest import unique_name

SALT = os.urandom(4).hex()


def bcrypt_hash(n: int) -> str:
    """A well-formed bcrypt string, unique to this run (so a grep for it finds only what leaked)."""
    body = f"{SALT}{n:06d}".ljust(53, "x")[:53]
    return f"{IMPORTED_PREFIX}$2b$10${body}"


@pytest.fixture
def ctx(base_config):
    return create_app(base_config).extensions["citylogin"]


def rows_of(count: int, *, source: str = "csv", start: int = 0, **fields) -> list[ImportRow]:
    tag = unique_name("imp")
    return [ImportRow(where=f"line {start + i + 2}", source=source, source_id=f"{tag}-{start + i}",
                      username=f"{tag}-{start + i}"[:32], email=f"{tag}-{start + i}@example.com", email_verified=True,
                      password_hash=bcrypt_hash(start + i), **fields) for i in range(count)]


def run(ctx, rows, **options):
    return import_accounts(ctx, rows=list(rows), options=ImportOptions(source=rows[0].source if rows else "csv",
                                                                        **options), file_sha256="0" * 64)


def snapshot(ctx, uuids: set[str]) -> dict:
    """Every users item and claim of `uuids`, as stored."""
    found: dict = {"users": {}, "claims": {}}
    for table, key, into in ((ctx.tables.users, "user_uuid", "users"), (ctx.tables.claims, "claim", "claims")):
        for page in ctx.dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page["Items"]:
                data = dynamo.from_item(item)
                if data.get("user_uuid") in uuids:
                    found[into][data[key]] = data
    return found


def live_account(ctx, *, username: str, email: str) -> UserRecord:
    user = UserRecord(user_uuid=str(uuid.uuid4()), username=username, email=email, password_hash="$argon2id$live",
                      created_at="2024-01-01T00:00:00Z")
    users.create_user(ctx, user=user, extra_attributes={}, extra_writes=[])
    return user


def assert_whole(ctx, rows: list[ImportRow]) -> dict:
    """Each row's account is there exactly once with both its claims, and no claim is there without it."""
    uuids = {r.user_uuid for r in rows}
    stored = snapshot(ctx, uuids)
    assert set(stored["users"]) == uuids
    expected = {username_claim(r.username) for r in rows} | {email_claim(r.email) for r in rows if r.email}
    assert {c for c in stored["claims"] if not c.startswith("identity#")} == expected
    return stored


def test_a_file_imported_twice_is_written_once_and_the_second_run_changes_nothing(ctx):
    rows = rows_of(70)
    first = run(ctx, rows)
    assert (first.imported, first.unchanged, first.refused) == (70, 0, [])
    before = assert_whole(ctx, rows)
    user = before["users"][rows[0].user_uuid]
    assert (user["imported_from"], user["password_hash"], user["email_verified"]) == ("csv", rows[0].password_hash,
                                                                                       True)
    second = run(ctx, rows)
    assert second.counts() == {"read": 70, "imported": 0, "unchanged": 70, "updated": 0, "refused": 0, "linked": 0,
                               "notes": 0}
    assert snapshot(ctx, {r.user_uuid for r in rows}) == before


def test_a_name_a_live_account_holds_is_never_taken_and_the_row_says_where_and_why(ctx):
    rows = rows_of(6)
    holder = live_account(ctx, username=rows[1].username.upper(), email=unique_name("h") + "@example.com")
    other = live_account(ctx, username=unique_name("o"), email=rows[3].email.upper())
    report = run(ctx, [*rows, RowRefusal(where="line 99", reason=RefusalReason.INVALID_EMAIL, detail="email: bad")])
    assert report.imported == 4 and report.read == 7
    assert sorted((r.where, r.reason, r.detail) for r in report.refused) == [
        ("line 3", RefusalReason.USERNAME_TAKEN, "username: another account holds it"),
        ("line 5", RefusalReason.EMAIL_TAKEN, "email: another account holds it"),
        ("line 99", RefusalReason.INVALID_EMAIL, "email: bad")]
    assert users.get_user(ctx, user_uuid=holder.user_uuid) == holder
    assert users.find_uuid_by_username(ctx, username=rows[1].username) == holder.user_uuid
    assert users.email_holder(ctx, email=rows[3].email) == other.user_uuid
    assert snapshot(ctx, {rows[1].user_uuid, rows[3].user_uuid}) == {"users": {}, "claims": {}}


def test_a_batch_cancelled_by_a_name_taken_meanwhile_gives_each_row_its_own_answer(ctx):
    # A registration takes a row's username between the batch's read and its transaction (a real write,
    # made when the batch's TransactWriteItems is about to be sent): the batch is cancelled, every other
    # row is written account by account, and that row alone is refused.
    rows = rows_of(10)
    racer = {}

    def register_first(model, params, **_):
        if model.name == "TransactWriteItems" and not racer and len(params["TransactItems"]) > 4:
            racer["user"] = live_account(ctx, username=rows[4].username, email=unique_name("r") + "@example.com")
    ctx.dynamodb.meta.events.register("before-parameter-build.dynamodb", register_first)
    try:
        report = run(ctx, rows)
    finally:
        ctx.dynamodb.meta.events.unregister("before-parameter-build.dynamodb", register_first)
    assert racer and report.imported == 9
    assert [(r.where, r.reason) for r in report.refused] == [(rows[4].where, RefusalReason.USERNAME_TAKEN)]
    assert_whole(ctx, rows[:4] + rows[5:])
    assert users.find_uuid_by_username(ctx, username=rows[4].username) == racer["user"].user_uuid


def test_a_transaction_of_several_accounts_writes_none_of_them_when_one_is_refused(ctx):
    rows = rows_of(3)
    live_account(ctx, username=rows[2].username, email=unique_name("l") + "@example.com")
    store = ImportStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims)
    accounts = [NewAccount(user_uuid=r.user_uuid, username=r.username, email=r.email,
                           attributes={"user_uuid": r.user_uuid, "username": r.username}) for r in rows]
    assert store.create_together(accounts) is False
    assert snapshot(ctx, {r.user_uuid for r in rows}) == {"users": {}, "claims": {}}


def test_rows_naming_one_item_twice_go_in_separate_transactions(ctx):
    # A transaction may name an item once: the second row of one uuid (or one address) waits for the next
    # batch, which finds the first's account.
    rows = rows_of(3)
    same_email = ImportRow(where="line 9", source="csv", source_id=unique_name("x"), username=unique_name("x"),
                           email=rows[0].email.upper(), email_verified=False, password_hash="")
    report = run(ctx, [*rows, rows[1], same_email])
    assert (report.imported, report.unchanged) == (3, 1)
    assert [(r.where, r.reason) for r in report.refused] == [("line 9", RefusalReason.EMAIL_TAKEN)]
    assert_whole(ctx, rows)


def test_a_dry_run_writes_nothing_and_says_what_it_would_do(ctx):
    rows = rows_of(5)
    live_account(ctx, username=rows[0].username, email=unique_name("d") + "@example.com")
    counter = CallCounter(ctx.dynamodb)
    report = run(ctx, rows, dry_run=True)
    assert (report.dry_run, report.imported, [r.reason for r in report.refused]) == (
        True, 4, [RefusalReason.USERNAME_TAKEN])
    assert set(counter.take()) <= {"BatchGetItem", "Query"}  # the accounts, the providers configured: reads only
    assert snapshot(ctx, {r.user_uuid for r in rows}) == {"users": {}, "claims": {}}


def test_update_changes_only_what_differs_and_never_a_password_set_in_citylogin(ctx):
    rows = rows_of(4)
    run(ctx, rows)
    store_item = snapshot(ctx, {rows[1].user_uuid})["users"][rows[1].user_uuid]
    # the person of row 2 signed in: citylogin's own hash replaced the imported one
    assert users.rehash_password(ctx, user_uuid=rows[2].user_uuid, verified_hash=rows[2].password_hash,
                                 password_hash="$argon2id$v=19$own")
    changed = [
        rows[0].__class__(**{**rows[0].__dict__, "email": "new-" + rows[0].email, "locale": "ja"}),
        rows[1],
        rows[2].__class__(**{**rows[2].__dict__, "password_hash": bcrypt_hash(900)}),
        rows[3].__class__(**{**rows[3].__dict__, "password_hash": bcrypt_hash(901), "email_verified": False,
                             "disabled": True}),
    ]
    report = run(ctx, changed, update=True)
    assert (report.updated, report.unchanged, report.refused) == (2, 2, [])  # row 2: the person's own password stays
    stored = snapshot(ctx, {r.user_uuid for r in rows})
    first = stored["users"][rows[0].user_uuid]
    assert (first["email"], first["locale"]) == ("new-" + rows[0].email, "ja")
    assert email_claim("new-" + rows[0].email) in stored["claims"]
    assert email_claim(rows[0].email) not in stored["claims"]
    assert stored["users"][rows[1].user_uuid] == store_item
    assert stored["users"][rows[2].user_uuid]["password_hash"] == "$argon2id$v=19$own"
    fourth = stored["users"][rows[3].user_uuid]
    assert (fourth["password_hash"], fourth["email_verified"], fourth["locked"]) == (bcrypt_hash(901), False, True)
    again = run(ctx, changed, update=True)
    assert (again.updated, again.unchanged) == (0, 4)
    assert snapshot(ctx, {r.user_uuid for r in rows})["users"][rows[2].user_uuid]["password_hash"] == \
        "$argon2id$v=19$own"


def test_an_update_never_lifts_a_lock_and_leaves_what_the_export_does_not_hold(ctx):
    rows = rows_of(2, locale="ja")
    run(ctx, rows)
    users.lock_account(ctx, user_uuid=rows[0].user_uuid)  # an operator's lock in citylogin
    # Auth0's password export holds no locale and no state: an --update with it keeps the stored ones
    # and changes the hash only.
    hashes_only = [replace(row, locale="en", disabled=False, password_hash=bcrypt_hash(700 + i),
                           unstated=frozenset({"locale", "disabled", "created_at", "identities"}))
                   for i, row in enumerate(rows)]
    report = run(ctx, hashes_only, update=True)
    assert (report.updated, report.refused) == (2, [])
    stored = snapshot(ctx, {r.user_uuid for r in rows})["users"]
    assert [(stored[r.user_uuid]["locale"], stored[r.user_uuid].get("locked"), stored[r.user_uuid]["password_hash"])
            for r in rows] == [("ja", True, bcrypt_hash(700)), ("ja", None, bcrypt_hash(701))]
    # a user export that says the person is enabled does not lift the operator's lock either
    enabled = [replace(row, disabled=False, unstated=frozenset({"password_hash"})) for row in rows]
    run(ctx, enabled, update=True)
    assert snapshot(ctx, {rows[0].user_uuid})["users"][rows[0].user_uuid]["locked"] is True


def test_an_update_refuses_an_address_another_account_holds(ctx):
    rows = rows_of(1)
    run(ctx, rows)
    holder = live_account(ctx, username=unique_name("h"), email=unique_name("h") + "@example.com")
    moved = rows[0].__class__(**{**rows[0].__dict__, "email": holder.email})
    report = run(ctx, [moved], update=True)
    assert [(r.where, r.reason) for r in report.refused] == [(rows[0].where, RefusalReason.EMAIL_TAKEN)]
    assert users.email_holder(ctx, email=holder.email) == holder.user_uuid
    assert users.email_holder(ctx, email=rows[0].email) == rows[0].user_uuid


def test_identities_become_links_through_configured_providers_and_the_others_are_noted(ctx):
    name = unique_name("kc")[:20].lower().replace("_", "-")
    providers.add_provider(ctx, name=name, issuer="https://corp.example", client_id="c", client_secret="s")
    rows = rows_of(2, source="keycloak")
    sub = unique_name("sub")
    rows[0] = rows[0].__class__(**{**rows[0].__dict__, "identities": (
        ImportedIdentity(provider="corp", sub=sub, email=rows[0].email), ImportedIdentity(provider="github", sub="1"))})
    report = run(ctx, rows, providers={"corp": name})
    assert (report.imported, report.linked) == (2, 1)
    assert [n.note for n in report.notes] == ["identity of 'github' not linked: no such provider is configured "
                                              "(--provider)"]
    assert identities.owner_of(ctx, issuer="https://corp.example", sub=sub) == rows[0].user_uuid
    [linked] = identities.list_identities(ctx, user_uuid=rows[0].user_uuid)
    assert (linked.provider, linked.sub) == (name, sub)
    # the same identity in another row: linked already, so that account is written without it
    again = rows_of(1, source="keycloak")[0]
    again = again.__class__(**{**again.__dict__, "identities": (ImportedIdentity(provider="corp", sub=sub),)})
    report = run(ctx, [again], providers={"corp": name})
    assert (report.imported, report.linked) == (1, 0)
    assert "linked to another account" in report.notes[0].note
    assert_whole(ctx, [again])


def test_batches_cost_a_fraction_of_a_call_per_account(ctx):
    rows = rows_of(300)
    counter = CallCounter(ctx.dynamodb)
    run(ctx, rows)
    calls = counter.take()
    per_account = sum(calls.values()) / len(rows)
    print(f"DynamoDB calls per imported account: {per_account:.3f} ({dict(calls)})")
    # the accounts' reads and writes; once a run: the providers configured (Query), the scheme record (GetItem
    # and its PutItem)
    assert set(calls) <= {"BatchGetItem", "TransactWriteItems", "Query", "GetItem", "PutItem", "UpdateItem"}
    assert calls["TransactWriteItems"] <= len(rows) / 30 + 1 and calls["BatchGetItem"] <= len(rows) / 30 + 1
    run(ctx, rows)
    # a rerun reads, and writes no account: only the scheme record's "recorded now" (what keeps `citylogin
    # password-parameters retire` from removing a key an import is writing)
    rerun = counter.take()
    assert rerun["BatchGetItem"] == calls["BatchGetItem"]
    assert set(rerun) <= {"BatchGetItem", "Query", "GetItem", "PutItem"}
    assert rerun["GetItem"] <= 1 and rerun["Query"] <= 1 and rerun["PutItem"] <= 1


def test_no_hash_in_the_report_the_audit_or_the_logs(ctx, caplog):
    rows = rows_of(5)
    caplog.set_level(logging.DEBUG)
    live_account(ctx, username=rows[0].username, email=unique_name("n") + "@example.com")
    report = run(ctx, rows)
    printed = json.dumps(report.summary()) + caplog.text
    assert '"event": "accounts_imported"' in caplog.text
    for r in rows:
        assert r.password_hash[len(IMPORTED_PREFIX):] not in printed
        assert r.password_hash.split("$")[-1] not in printed


def test_the_scheme_keys_are_recorded_before_their_accounts_and_one_beyond_the_record_is_refused(ctx):
    from common.keys.imported_schemes import ImportedSchemeStore
    rows = [r.__class__(**{**r.__dict__, "password_hash": f"{IMPORTED_PREFIX}$2b${4 + i:02d}$" + r.password_hash[-53:]})
            for i, r in enumerate(rows_of(12))]  # bcrypt costs 4 to 15: twelve keys, more than the record holds
    report = run(ctx, rows)
    recorded = ImportedSchemeStore(ctx.dynamodb, ctx.tables.key_ring, ctx.key_ring.encryptor).load().listed.keys
    assert 0 < len(recorded) <= 8
    imported = {r.user_uuid for r in rows} - {r.user_uuid for r in rows if r.where in {x.where for x in report.refused}}
    assert report.imported == len(imported) and {x.reason for x in report.refused} == {RefusalReason.INVALID_HASH}
    stored = snapshot(ctx, {r.user_uuid for r in rows})["users"]
    assert set(stored) == imported
    assert all(f"bcrypt${int(item['password_hash'].split('$')[2])}" in recorded for item in stored.values())
