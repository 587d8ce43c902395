"""A finished account deletion leaves nothing the person typed or that names them (SPEC §4 DELETE
/account), proven by Scans of every table: an account used every way that stores something (two
devices, one by pairing, with names like "Alice Smith's iPhone"; logins, a refresh, a session ended
by eviction, a failed login, a password reset request, an e-mail change, a passkey, an app's OpenID
Connect sign-in with consent, an operator's action) is deleted, and afterwards no attribute of any
item holds its username, either address (any case), a device or passkey name or the user agent it
sent, and no item of the account holds the client's IP address. What does remain of it is exactly
the set docs/reference/http-api.md lists; and it is the same when the deletion is cut off at any one of its
DynamoDB calls and then finished by a retry and the sweeper."""
from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from accounts import user_service as users
from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import CityloginError, Client, ConcurrentLoginRequired
from common.errors import ServiceUnavailable
from common.crypto.tokens import token_digest
from common.database import dynamo
from common.database.dynamo_client import DATA_PLANE
from flows import deletion as deletion_service
from sessions import service as sessions
from tests.support.deletion_check import serial_of
from tests.support.live import PASSWORD, FakeClock, settle_background, verify_address
from tests.support.oidc import query_of, waiting_request
from tests.support.soft_authenticator import SoftAuthenticator

PUBLIC_URL = "https://login.example.test"  # a passkey's relying-party id is a host name
# Every test here fails logins from 127.0.0.1 on the module's tables: past the per-IP lockout the
# others would be refused (429) for the module's whole run.
NO_IP_LIMITS = {"challenges_per_minute_per_ip": 10**6, "login_max_failures_per_ip": 10**6}
REDIRECT = "https://diary.example/callback"
CLIENT_IP = "127.0.0.1"

# What docs/reference/http-api.md (DELETE /account) says stays of a deleted account, table by table: the attributes
# of each kind of item. Nothing else of the account may remain anywhere.
TOMBSTONE = {"user_uuid", "deletion", "deleting_since", "deletion_finished", "expires_ttl"}
ENDED_SESSION = {"session_id", "user_uuid", "device_id", "device_name", "created_at", "login_epoch",
                 "last_seen_epoch", "expires_epoch", "ends_at", "refresh_gen", "refresh_digest", "prev_refresh_digest",
                 "refresh_kid", "rotated_epoch", "status", "revoked_reason", "revoked_at", "by_device", "locked",
                 "expires_ttl", "device_class", "class_changes", "jkt", "amr", "reauth_epoch", "admin_action", "by_app",
                 "by_app_name", "login_seq"}
SESSION_EVENT = {"feed", "seq", "session_id", "user_uuid", "device_id", "reason", "event_epoch", "initiating_entity",
                 "by_device", "client_id", "grant_id", "expires_ttl", "admin_action", "by_app", "by_app_name"}
CRL_ENTRY = {"user_uuid", "device_id", "serial", "revoked_at", "reason", "revoked_user_uuid", "revoked_device_id",
             "expires_epoch", "expires_ttl"}
APP_GRANT = {"session_id", "client_id", "grant_id", "user_uuid", "device_id", "scope", "auth_time", "amr",
             "refresh_gen", "jkt", "rotated_gen", "rotated_epoch", "refresh_kid", "rotated_jkt", "revoked",
             "revoked_epoch", "granted_epoch", "expires_epoch", "expires_ttl", "person_ended_ms",
             "request_digest", "redeemed_requests"}  # digests of the authorization requests whose codes gave it
# The mail telling the person of the deletion, sent: its contents (address, parameters) erased.
DELETION_NOTICE = {"mail_id", "user_uuid", "event", "texts", "locale", "state", "since", "created_at", "attempts",
                   "due_at", "sent_at", "expires_ttl"}
WAITING_NOTICE = {"queue", "sealed", "sealed_kid", "lease_owner", "lease_until", "last_error"}


@dataclass
class Person:
    """One account used every way that stores something, with what it typed and sent."""
    username: str
    email: str
    new_email: str
    user_agent: str
    device_names: list[str]
    passkey_name: str
    first: Client
    paired: Client
    session_ids: dict[str, str] = field(default_factory=dict)  # session_id -> how it ends

    @property
    def user_uuid(self) -> str:
        return self.paired.require_key_file().user_uuid

    @property
    def device_ids(self) -> set[str]:
        return {c.require_key_file().device_id for c in (self.first, self.paired)}

    @property
    def serials(self) -> set[str]:
        return {format(serial_of(c.require_key_file().client_cert_pem), "x") for c in (self.first, self.paired)}

    def personal(self) -> list[str]:
        """What names the person, as it must appear nowhere: the typed values and the digest that
        keys the reset counters of the address."""
        return [self.username, self.email, self.new_email, self.user_agent, *self.device_names, self.passkey_name,
                token_digest(self.email.casefold(), purpose="reset-address")]

    def ids(self) -> set[str]:
        return {self.user_uuid, *self.device_ids, *self.serials}


def agent(user_agent: str) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    return session


def add_passkey(client: Client, *, name: str) -> None:
    options = client.request("POST", "/account/passkeys/options", json={"password": PASSWORD})
    assert options.status_code == 200, options.text
    credential = SoftAuthenticator(PUBLIC_URL).create(options.json())
    added = client.request("POST", "/account/passkeys", json={"credential": credential, "name": name})
    assert added.status_code == 201, added.text


def oidc_sign_in(url: str, app, device: Client) -> None:
    """The app's sign-in on the device's session, consent given, code redeemed (a grant, a consent)."""
    request_id, verifier = waiting_request(url, app.app.client_id, redirect_uri=REDIRECT, browser=device,
                                           scope="openid profile email offline_access")
    finished = device.request("POST", "/oidc/authorize/complete", json={"request": request_id, "consent": True})
    assert finished.status_code == 200, finished.text
    issued = requests.post(url + "/oidc/token", data={
        "grant_type": "authorization_code", "code": query_of(finished.json()["redirect_to"])["code"],
        "redirect_uri": REDIRECT, "code_verifier": verifier}, auth=(app.app.client_id, app.client_secret), timeout=10)
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": "Bearer " + issued.json()["access_token"]}
    userinfo = requests.get(url + "/oidc/userinfo", headers=bearer, timeout=10)
    assert userinfo.status_code == 200 and userinfo.json()["email"], userinfo.text


def used_every_way(url: str, ctx, app, *, reset: bool = True) -> Person:
    tag = uuid.uuid4().hex[:8]
    user_agent = f"AliceBrowser/{tag} (Alice Smith's phone)"
    person = Person(username=f"AliceSmith{tag}", email=f"Alice.Smith.{tag}@Example.COM",
                    new_email=f"alice.new.{tag}@Example.org", user_agent=user_agent,
                    device_names=[f"Alice Smith's iPhone {tag}", f"Alice Smith's iPad {tag}",
                                  f"Alice's old iPhone {tag}"],
                    passkey_name=f"Alice's YubiKey {tag}",
                    first=Client(url, session=agent(user_agent)), paired=Client(url, session=agent(user_agent)))
    first, paired = person.first, person.paired
    first.register(username=person.username, email=person.email, password=PASSWORD,
                   device_name=person.device_names[0])
    first.login(PASSWORD)
    person.session_ids[first.session_id or ""] = "displaced"
    with pytest.raises(CityloginError):
        first.login("not the password")  # a failure counter of the username, a history row
    paired.pair(first.request_pairing()["qr_code"], username=person.username, password=PASSWORD,
                device_name=person.device_names[1])
    first.request_pairing()  # a pairing code left unused, and its per-user counter
    with pytest.raises(ConcurrentLoginRequired) as busy:
        paired.login(PASSWORD)  # a confirm token with the IP address and user agent
    paired.confirm(busy.value.confirm_token or "")  # evicts the first device: its history names it
    person.session_ids[paired.session_id or ""] = "account_deleted"
    paired.refresh()
    paired.rename_device(first.require_key_file().device_id, person.device_names[2])
    add_passkey(paired, name=person.passkey_name)
    verify_address(ctx, user_uuid=person.user_uuid)  # an app is told a verified address only
    oidc_sign_in(url, app, paired)
    paired.change_email(password=PASSWORD, new_email=person.new_email)  # a link that holds the new address
    if reset:  # 20 requests an hour per IP address, a constant
        Client(url, session=agent(user_agent)).request_password_reset(person.email.upper())
    sessions.record_operator_action(ctx, user_uuid=person.user_uuid, action="lock",
                                    details={"operator": "ops", "reason": f"{person.username} asked by phone"})
    settle_background(ctx)
    return person


def scan(ctx, table: str) -> list[dict[str, Any]]:
    pages = ctx.dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [dynamo.from_item(item) for page in pages for item in page["Items"]]


def what_names(ctx, person: Person) -> list[str]:
    """Every item of every table that holds something that names the person, or (if it is one of
    the account's) the client's IP address."""
    marks, ids = [m.casefold() for m in person.personal()], person.ids()
    found = []
    for table in ctx.tables.all():
        for item in scan(ctx, table):
            text = repr(item).casefold()
            if any(mark in text for mark in marks) or (CLIENT_IP in text and any(i in text for i in ids)):
                found.append(f"{table}: {item}")
    return found


def remains(ctx, person: Person) -> dict[str, list[dict[str, Any]]]:
    """The items that mention the account (its user_uuid, a device id or a certificate serial), by table."""
    ids = person.ids()
    kept: dict[str, list[dict[str, Any]]] = {}
    for table in ctx.tables.all():
        items = [item for item in scan(ctx, table) if any(i in repr(item) for i in ids)]
        if items:
            kept[table] = items
    return kept


def counts(ctx, kept: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    prefix = ctx.settings.table_prefix
    return {table.removeprefix(prefix): len(items) for table, items in sorted(kept.items())}


def assert_only_the_documented_rest(ctx, person: Person, *, tombstone: bool) -> dict[str, int]:
    """What stays of the account is exactly what docs/reference/http-api.md lists; returns the items per table."""
    tables, kept = ctx.tables, remains(ctx, person)
    expected = {tables.sessions, tables.security_events, tables.devices, tables.oidc_grants} | (
        {tables.users} if tombstone else set())
    # the deletion notice, unless a deletion cut off right after its state was written never wrote it
    assert expected <= set(kept) <= expected | {tables.mail_outbox}, counts(ctx, kept)
    if tombstone:
        [item] = kept[tables.users]
        assert set(item) <= TOMBSTONE and item["user_uuid"] == person.user_uuid, item
    ended = {item["session_id"]: item for item in kept[tables.sessions]}
    assert set(ended) == set(person.session_ids)
    for item in ended.values():
        assert set(item) <= ENDED_SESSION and item["device_name"] == "" and item["status"] == "revoked", item
        assert item["revoked_reason"] == person.session_ids[item["session_id"]], item
    events = kept[tables.security_events]
    assert all(set(item) <= SESSION_EVENT for item in events), events
    assert sorted((e["session_id"], e["reason"]) for e in events) == sorted(person.session_ids.items())
    crl = kept[tables.devices]
    assert all(set(item) <= CRL_ENTRY and item["user_uuid"] == "#crl" for item in crl), crl
    assert {item["serial"] for item in crl} == person.serials
    [grant] = kept[tables.oidc_grants]
    assert set(grant) <= APP_GRANT and grant["session_id"] in person.session_ids, grant
    for notice in kept.get(tables.mail_outbox, []):  # sent; or (a cut answer) waiting, its contents sealed
        waiting = WAITING_NOTICE if notice["state"] == "due" else set()
        assert set(notice) <= DELETION_NOTICE | waiting and notice["event"] == "account_deleted", notice
    return counts(ctx, kept)


@pytest.fixture
def provider(make_server):
    url, ctx = make_server(public_url=PUBLIC_URL, deletion_settle_seconds=60,  # the default settle time
                           **NO_IP_LIMITS)
    diary = apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))
    return url, ctx, diary


def last_pass(ctx) -> None:
    """The sweeper's last pass, CITYLOGIN_DELETION_SETTLE_SECONDS after the deletion finished."""
    clock = FakeClock()
    ctx.clock = clock
    clock.advance(ctx.settings.deletion_settle_seconds + 1)
    assert deletion_service.sweep_deletions(ctx) == 1


def test_a_finished_deletion_leaves_no_item_that_names_the_person(provider):
    url, ctx, diary = provider
    person = used_every_way(url, ctx, diary)
    assert len(what_names(ctx, person)) > 10  # profile, claims, devices, sessions, history, tokens, passkey...

    deleted = person.paired.request("DELETE", "/account", json={"password": PASSWORD})
    assert deleted.status_code == 204, deleted.text
    settle_background(ctx)
    assert what_names(ctx, person) == []
    finished = assert_only_the_documented_rest(ctx, person, tombstone=True)
    print("\nitems of the deleted account, once the deletion finished:", finished)

    last_pass(ctx)
    assert what_names(ctx, person) == []
    swept = assert_only_the_documented_rest(ctx, person, tombstone=False)
    print("items of the deleted account, after the sweeper's last pass:", swept)


# --- cut off at any DynamoDB call -----------------------------------------------------------------

Cut = Callable[[int, str, dict], bool]  # (call number from 1, operation, its parameters): cut it off?


class CutClient:
    """The app's DynamoDB client with the first call that `cut` picks answered by a lost connection
    after it reached DynamoDB: a write took effect (or was refused), the caller never heard. (A call
    cut before it is sent leaves the state of a cut one call earlier.) `fired`: the cut was made."""

    def __init__(self, client, *, cut: Cut) -> None:
        self._client, self._cut, self.calls, self.fired = client, cut, 0, False
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        call = getattr(self._client, name)
        if name not in {_snake(op) for op in DATA_PLANE}:
            return call

        def cut_off(**params):
            with self._lock:
                self.calls += 1
                this = not self.fired and self._cut(self.calls, name, params)
                self.fired = self.fired or this
            try:
                answer = call(**params)
            except ClientError:  # a refused write: its refusal is what gets lost
                if not this:
                    raise
            else:
                if not this:
                    return answer
            raise EndpointConnectionError(endpoint_url="http://dynamodb.cut.example")
        return cut_off


def call_number(k: int) -> Cut:
    return lambda n, *_: n == k


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


def sweep_through_outages(ctx) -> None:
    """One sweeper pass, as the sweeper thread makes it: a DynamoDB failure waits for the next."""
    try:
        deletion_service.sweep_deletions(ctx)
    except (BotoCoreError, ClientError, ServiceUnavailable):
        pass


SHARDS = 3  # the cuts, spread over tests that can run in parallel


@pytest.mark.parametrize("shard", range(SHARDS))
def test_a_deletion_cut_off_at_any_of_its_dynamodb_calls_still_leaves_nothing_personal(make_server, shard):
    url, ctx = make_server(public_url=PUBLIC_URL, deletion_settle_seconds=0, **NO_IP_LIMITS)
    diary = apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))
    healthy, answers = ctx.dynamodb, set()
    for cut in itertools.count(shard + 1, SHARDS):
        person = used_every_way(url, ctx, diary, reset=False)
        ctx.dynamodb = cutter = CutClient(healthy, cut=call_number(cut))
        try:  # the request, then the sweeper's passes: one of their calls is cut off
            answer = person.paired.request("DELETE", "/account", json={"password": PASSWORD})
            sweep_through_outages(ctx)
            sweep_through_outages(ctx)
            settle_background(ctx)
        finally:
            ctx.dynamodb = healthy
        answers.add((answer.status_code, problem_code(answer)))
        if not cutter.fired:
            break  # the whole deletion made fewer calls: every one of them has been cut off
        deletion_service.sweep_deletions(ctx)  # the sweeper alone finishes a deletion that was entered
        deletion_service.sweep_deletions(ctx)
        user = users.get_user(ctx, user_uuid=person.user_uuid)
        if user is not None:  # cut off before the deleting state was written: the person tries again
            assert not user.deleting and answer.status_code == 503, (cut, answer.status_code)
            again = person.paired.request("DELETE", "/account", json={"password": PASSWORD})
            assert again.status_code == 204, (cut, again.text)
            deletion_service.sweep_deletions(ctx)
        assert users.get_user(ctx, user_uuid=person.user_uuid) is None, cut
        assert what_names(ctx, person) == [], cut
        assert_only_the_documented_rest(ctx, person, tombstone=False)
    assert cutter.calls > 40, cutter.calls  # the request and the two passes: about 55 calls, each cut once
    assert answers <= {(204, None), (503, "service_unavailable")}, answers


def problem_code(answer: requests.Response) -> str | None:
    return answer.json().get("code") if answer.status_code >= 400 else None


def test_a_name_taken_after_a_pass_freed_it_does_not_stop_the_deletion(make_server):
    """The pass that freed the names is cut off before it writes the tombstone, and a new account
    takes the username: the next pass leaves the new account's name alone and finishes."""
    url, ctx = make_server(public_url=PUBLIC_URL, deletion_settle_seconds=0, **NO_IP_LIMITS)
    diary = apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))
    person = used_every_way(url, ctx, diary, reset=False)
    healthy, claims = ctx.dynamodb, ctx.tables.claims

    def frees_the_names(_: int, operation: str, params: dict) -> bool:
        return operation == "transact_write_items" and all(
            item.get("Delete", {}).get("TableName") == claims for item in params["TransactItems"])
    ctx.dynamodb = cutter = CutClient(healthy, cut=frees_the_names)
    try:
        assert person.paired.request("DELETE", "/account", json={"password": PASSWORD}).status_code == 204
    finally:
        ctx.dynamodb = healthy
    assert cutter.fired
    newcomer = Client(url)
    newcomer.register(username=person.username, email=f"new.{person.email}", password=PASSWORD)

    deletion_service.sweep_deletions(ctx)
    deletion_service.sweep_deletions(ctx)
    assert users.get_user(ctx, user_uuid=person.user_uuid) is None
    assert users.find_uuid_by_username(ctx, username=person.username) == newcomer.require_key_file().user_uuid
    assert_only_the_documented_rest(ctx, person, tombstone=False)
    newcomers = newcomer.require_key_file().user_uuid
    assert [line for line in what_names(ctx, person) if newcomers not in line] == []
