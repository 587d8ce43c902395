"""DELETE /account as a state and a finisher (SPEC §4, issue 16 items 4-6): the account enters the
deleting state in one write and answers 204 from then on, even if DynamoDB fails right after; a
retry or the sweeper finishes; whatever races the deletion (pairing, recovery, renewal, login)
leaves nothing behind, and every certificate the account was issued is in the CRL."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import requests

from citylogin.client.api import Client, CityloginError
from flows import deletion as deletion_service, deletion_sweeper
from sessions.context import session_store
from tests.support.deletion_check import leftovers, missing_from_crl, serial_of
from tests.support.fixtures import bearer_problem
from tests.support.live import PASSWORD, add_device, register_device, settle_background
from tests.support.tcp_faults import FaultyProxy

FAST_SWEEP = {"max_concurrent_devices": 0, "deletion_settle_seconds": 0, "deletion_sweep_interval": 0,
              "pairing_tokens_per_hour": 1000}


def what_is_left(ctx, client: Client, *, deleted_at: float | None = None) -> list[str]:
    key = client.key_file
    return leftovers(ctx.dynamodb, ctx.tables, user_uuid=key.user_uuid, username=key.username,
                     email=f"{key.username}@example.com", deleted_at=deleted_at)


def crl_misses(url: str, serials: set[int]) -> set[int]:
    return missing_from_crl(requests.get(url + "/device/crl.pem", timeout=10).content, serials)


def delete(client: Client) -> requests.Response:
    return client.request("DELETE", "/account", json={"password": PASSWORD})


def finish_now(ctx) -> None:
    """The sweeper's pass, twice: finish, then (settle time 0) the last pass that removes the tombstone."""
    settle_background(ctx)
    deletion_service.sweep_deletions(ctx)
    deletion_service.sweep_deletions(ctx)


@contextmanager
def cut_after_the_state_write(ctx, proxy: FaultyProxy) -> Iterator[None]:
    """DynamoDB goes away (the chaos proxy closes) the moment the deleting state is written."""
    def mark(params, context, **_):
        context["state_write"] = ":pending" in params.get("ExpressionAttributeValues", {})

    def cut(context, **_):
        if context.get("state_write"):
            proxy.close()
    events = ctx.dynamodb.meta.events
    events.register("before-parameter-build.dynamodb.UpdateItem", mark)
    events.register("after-call.dynamodb.UpdateItem", cut)
    try:
        yield
    finally:
        events.unregister("before-parameter-build.dynamodb.UpdateItem", mark)
        events.unregister("after-call.dynamodb.UpdateItem", cut)


def test_deletion_leaves_no_token_counter_or_pairing_code_behind(make_server):
    url, ctx = make_server(**FAST_SWEEP)
    first = register_device(url)
    second = add_device(ctx, first, name="tablet")
    first.login(PASSWORD)
    second.login(PASSWORD)  # a first sign-in: a "Wasn't you?" token with the account's ids
    first.request_pairing()  # a pairing code and its per-user counter
    first.resend_verification()  # a verification token with the address, and its counter
    serials = {serial_of(c.key_file.client_cert_pem) for c in (first, second)}
    assert delete(first).status_code == 204

    settle_background(ctx)
    left = what_is_left(ctx, first)
    # Only the bare state remains until the sweeper's last pass: no name, address or hash.
    assert [line for line in left if not line.startswith(ctx.tables.users)] == []
    tombstone = ctx.dynamodb.get_item(TableName=ctx.tables.users, ConsistentRead=True,
                                      Key={"user_uuid": {"S": first.key_file.user_uuid}})["Item"]
    assert not {"username", "email", "password_hash", "recovery_code_digests"} & set(tombstone)
    finish_now(ctx)
    assert what_is_left(ctx, first) == []
    assert crl_misses(url, serials) == set()
    assert delete(first).status_code == 204  # a retry after the end still answers 204


def test_a_deletion_cut_off_after_its_state_write_answers_204_and_a_retry_finishes_it(
        make_server, dynamodb_endpoint):
    proxy = FaultyProxy(dynamodb_endpoint)
    url, ctx = make_server(dynamodb_endpoint_url=proxy.url, **FAST_SWEEP)
    first = register_device(url)
    second = add_device(ctx, first, name="tablet")
    first.login(PASSWORD)
    second.login(PASSWORD)
    serials = {serial_of(c.key_file.client_cert_pem) for c in (first, second)}
    port = proxy.port

    with cut_after_the_state_write(ctx, proxy):
        assert delete(first).status_code == 204
    proxy = FaultyProxy(dynamodb_endpoint, port=port)  # DynamoDB is back
    try:
        assert len(what_is_left(ctx, first)) > 3  # devices, sessions, claims... still there
        # Nothing of the account works any more: no login, no new device, no new certificate.
        third = Client(url)
        payload = first.request_pairing()["qr_code"]  # its session was not ended yet
        for attempt in (lambda: second.login(PASSWORD, force=True),
                        lambda: third.pair(payload, username=first.key_file.username, password=PASSWORD)):
            try:
                attempt()
                raise AssertionError("an account being deleted was used")
            except CityloginError as refused:
                assert (refused.status, refused.code) == (410, "account_deleted")
        try:
            first.renew(new_key=True)
            raise AssertionError("an account being deleted got a certificate")
        except CityloginError as refused:
            assert (refused.status, refused.code) == (401, "session_revoked")

        assert delete(first).status_code == 204  # the retry: no password needed, it finishes
        for client in (first, second):
            assert bearer_problem(client.request("GET", "/session/me")) == (401, "session_revoked", "account_deleted")
        finish_now(ctx)
        assert what_is_left(ctx, first) == []
        assert crl_misses(url, serials) == set()
    finally:
        proxy.close()


def test_a_deletion_whose_request_failed_is_finished_by_the_sweeper(make_server, dynamodb_endpoint):
    proxy = FaultyProxy(dynamodb_endpoint)
    url, ctx = make_server(dynamodb_endpoint_url=proxy.url, **FAST_SWEEP)
    first = register_device(url)
    add_device(ctx, first, name="tablet").login(PASSWORD)
    first.login(PASSWORD)
    serials = {serial_of(first.key_file.client_cert_pem)}
    port = proxy.port

    with cut_after_the_state_write(ctx, proxy):
        assert delete(first).status_code == 204
    proxy = FaultyProxy(dynamodb_endpoint, port=port)
    try:
        assert what_is_left(ctx, first) != []
        deletion_service.sweep_deletions(ctx)  # no request, no retry: the sweeper alone
        assert [line for line in what_is_left(ctx, first) if not line.startswith(ctx.tables.users)] == []
        deletion_service.sweep_deletions(ctx)
        assert what_is_left(ctx, first) == []
        assert crl_misses(url, serials) == set()
    finally:
        proxy.close()


def test_the_sweeper_thread_finishes_without_being_asked(make_server, dynamodb_endpoint):
    proxy = FaultyProxy(dynamodb_endpoint)
    url, ctx = make_server(dynamodb_endpoint_url=proxy.url, **{**FAST_SWEEP, "deletion_sweep_interval": 0.5})
    first = register_device(url)
    first.login(PASSWORD)
    port = proxy.port

    with cut_after_the_state_write(ctx, proxy):
        assert delete(first).status_code == 204
    proxy = FaultyProxy(dynamodb_endpoint, port=port)
    try:
        deadline = time.monotonic() + 30
        while what_is_left(ctx, first) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert what_is_left(ctx, first) == []
    finally:
        deletion_sweeper.stop_sweeper(ctx)
        proxy.close()


# --- races --------------------------------------------------------------------------------

class Race:
    """Threads that pair, recover, renew and log in against one account until it is deleted,
    noting every certificate handed out."""

    def __init__(self, url: str, ctx, first: Client, devices: list[Client], codes: list[str]) -> None:
        self.url, self.ctx, self.first, self.devices, self.codes = url, ctx, first, devices, codes
        self.username = first.key_file.username
        self.issued = {serial_of(c.key_file.client_cert_pem) for c in [first, *devices]}
        self.lock, self.done = threading.Lock(), threading.Event()
        self.unexpected: list[str] = []
        self.successes = 0

    def note(self, client: Client) -> None:
        with self.lock:
            self.issued.add(serial_of(client.key_file.client_cert_pem))
            self.successes += 1

    def attempt(self, action) -> None:
        try:
            action()
        except CityloginError as refused:
            if refused.status >= 500:
                self.unexpected.append(f"{refused.status} {refused.code}")

    def pairing(self, payloads: list[str]) -> None:
        for payload in payloads:
            if self.done.is_set():
                return
            device = Client(self.url)
            self.attempt(lambda device=device, payload=payload: (
                device.pair(payload, username=self.username, password=PASSWORD), self.note(device)))

    def recovery(self) -> None:
        for code in self.codes:
            if self.done.is_set():
                return
            device = Client(self.url)
            self.attempt(lambda device=device, code=code: (
                device.recover(code, username=self.username, password=PASSWORD), self.note(device)))

    def renewal(self, device: Client) -> None:
        while not self.done.is_set():
            self.attempt(lambda: (device.renew(new_key=True), self.note(device)))

    def logins(self, device: Client) -> None:
        while not self.done.is_set():
            self.attempt(lambda: device.login(PASSWORD, force=True))


def test_pairing_recovery_renewal_and_logins_racing_a_deletion_leave_nothing(make_server):
    # The login thread logs in as fast as it can, each login with a challenge from 127.0.0.1: on a fast
    # machine more than the default 120 a minute, whose 429 this test does not ask about.
    url, ctx = make_server(**{**FAST_SWEEP, "max_registered_devices": 100, "login_max_failures": 1000,
                              "challenges_per_minute_per_ip": 10**6})
    for round_ in range(3):
        first = Client(url)
        name = f"race{random.randrange(10**9)}"
        first.register(username=name, email=f"{name}@example.com", password=PASSWORD)
        devices = [add_device(ctx, first, name=f"d{i}") for i in range(3)]
        first.login(PASSWORD)
        for device in devices:
            device.login(PASSWORD)
        payloads = [first.request_pairing()["qr_code"] for _ in range(6)]
        race = Race(url, ctx, first, devices, list(first.recovery_codes)[:6])
        threads = [threading.Thread(target=race.pairing, args=(payloads[:3],)),
                   threading.Thread(target=race.pairing, args=(payloads[3:],)),
                   threading.Thread(target=race.recovery),
                   threading.Thread(target=race.renewal, args=(devices[0],)),
                   threading.Thread(target=race.renewal, args=(devices[1],)),
                   threading.Thread(target=race.logins, args=(devices[2],))]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(0.05, 0.4) + 0.2 * round_)
        deleted_at = time.time()  # failures with the name from now on are those of a free name
        assert delete(first).status_code == 204
        race.done.set()
        for thread in threads:
            thread.join(timeout=60)
        finish_now(ctx)
        assert race.unexpected == []
        assert what_is_left(ctx, first, deleted_at=deleted_at) == [], (round_, race.successes)
        assert crl_misses(url, race.issued) == set(), (round_, race.successes, len(race.issued))


@contextmanager
def counted_calls(ctx) -> Iterator[Counter]:
    """The DynamoDB calls the app context makes meanwhile, by operation."""
    calls: Counter = Counter()

    def count(model, **_):
        calls[model.name] += 1
    events = ctx.dynamodb.meta.events
    events.register("before-call.dynamodb", count)
    try:
        yield calls
    finally:
        events.unregister("before-call.dynamodb", count)


def test_a_deletion_takes_the_same_few_calls_however_long_the_account_lived(make_server):
    """Issue 82, item 10: an account of the soak had 237 ended sessions and 198 sent mails when it was
    deleted, and DELETE /account wrote them one call each (17 s on a loaded machine, past the client's
    30 s on a busier one). Each session's personal details go in transactions of many, and the mails in
    batches: the calls do not grow with the account's sessions and mails."""
    url, ctx = make_server(**{**FAST_SWEEP, "max_concurrent_devices": 1})
    first = register_device(url)
    second = add_device(ctx, first, name="tablet")
    for _ in range(LIVED):  # each login ends the other device's session, and a mail tells it
        first.login(PASSWORD, force=True)
        second.login(PASSWORD, force=True)
    settle_background(ctx)
    with counted_calls(ctx) as calls:
        assert delete(second).status_code == 204  # the one logged in last
        settle_background(ctx)
    single_writes = calls["UpdateItem"] + calls["DeleteItem"] + calls["PutItem"]
    assert single_writes < 20 and sum(calls.values()) < 60, " ".join(f"{op}={n}" for op, n in sorted(calls.items()))
    finish_now(ctx)
    assert what_is_left(ctx, first) == []


LIVED = 40  # logins of each of the account's two devices


def test_a_record_gone_from_a_transaction_of_forgetting_leaves_the_others_forgotten(make_server):
    """The records' transaction is refused when one expired away meanwhile: each is then written alone,
    and the one that is gone is not written back as a stub."""
    url, ctx = make_server(**FAST_SWEEP)
    first = register_device(url)
    first.login(PASSWORD)
    store = session_store(ctx)
    store.forget_personal_details([first.session_id, "expired-away"])
    record = store.get(first.session_id)
    assert record is not None and record.device_name == "" and record.ip is None and record.user_agent is None
    assert store.get("expired-away") is None
