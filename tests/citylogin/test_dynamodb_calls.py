"""DynamoDB calls per endpoint, counted with a botocore event hook on the app's own client.

Budgets (SPEC §4, issue 12): a protected request is one GetItem; the challenge one transaction
(the challenge and its per-IP rate limit); POST /login/ one BatchGetItem before the password hash
and one TransactWriteItems after it, which holds the history row too (issue 44: a login in three
calls and three round trips, challenge included, with nothing left for after the answer); redeeming
a pairing QR code within 3 calls; refresh one TransactWriteItems (its token carries what the
write needs); no request path ever calls Scan. A failed
login makes the same calls whether or not the username exists (no username enumeration)."""
from __future__ import annotations

import secrets
import threading
from collections import Counter

import pytest
import requests

from citylogin.app import create_app
from citylogin.client.api import Client, sign_challenge
from common import thread_kind
from common.keys.ring_refresher import THREAD_NAME as KEY_RING_REFRESHER
from tests.support.live import PASSWORD, add_device, bearer_login, register_device, serving, settle_background
from tests.support.soft_authenticator import SoftAuthenticator

# What the decision reads, then what it writes: the session, the presence and the history row together.
LOGIN_CALLS = Counter({"BatchGetItem": 1, "TransactWriteItems": 1})
# The challenge item and the per-IP counter that bounds how many an address may create, together.
CHALLENGE_CALLS = Counter({"TransactWriteItems": 1})
QR_REDEMPTION_BUDGET = 3


class CallCounter:
    """Counts API calls by operation name, and by (operation, table) in `by_table`; not the process's
    scheduled work (the key ring's reads, the app registry's checks...), made once an interval on
    threads of their own, whatever the requests."""

    def __init__(self, client) -> None:
        self.calls: Counter = Counter()
        self.by_table: Counter = Counter()
        self._lock = threading.Lock()  # the login's background pool calls from other threads
        client.meta.events.register("before-parameter-build.dynamodb", self._count)

    def _count(self, model, params, **_):
        if threading.current_thread().name == KEY_RING_REFRESHER or thread_kind.current() == thread_kind.SCHEDULED:
            return
        with self._lock:
            self.calls[model.name] += 1
            self.by_table[(model.name, params.get("TableName"))] += 1

    def take(self) -> Counter:
        with self._lock:
            taken, self.calls, self.by_table = self.calls, Counter(), Counter()
        return taken

    def take_by_table(self) -> Counter:
        with self._lock:
            taken, self.calls, self.by_table = self.by_table, Counter(), Counter()
        return taken


@pytest.fixture
def counted(base_config):
    app = create_app(base_config)
    ctx = app.extensions["citylogin"]
    counter = CallCounter(ctx.dynamodb)
    with serving(app) as url:
        yield url, counter


@pytest.fixture
def counted_app(base_config):
    """Like `counted`, with the app's context too."""
    app = create_app(base_config)
    ctx = app.extensions["citylogin"]
    counter = CallCounter(ctx.dynamodb)
    with serving(app) as url:
        yield url, ctx, counter


def test_protected_request_is_exactly_one_get_item(counted_app):
    url, ctx, counter = counted_app
    client = register_device(url)
    bearer_login(client)
    settle_background(ctx)  # the login's history row is written after its answer
    counter.take()
    for path in ("/session/me", "/session/me", "/session/me"):
        assert client.request("GET", path).status_code == 200
        assert counter.take() == Counter({"GetItem": 1})


def test_a_bound_request_adds_one_conditional_put_that_spends_its_proof(counted_app):
    # SPEC §12: the proof's jti is used up on every host by one conditional write; the session read
    # is still the one read.
    url, ctx, counter = counted_app
    client = register_device(url)
    client.login(PASSWORD)
    assert client.token_type == "DPoP"
    settle_background(ctx)
    counter.take()
    for _ in range(3):
        assert client.request("GET", "/session/me").status_code == 200
        assert counter.take() == Counter({"GetItem": 1, "PutItem": 1})


def test_a_locked_account_still_costs_one_get_item_per_protected_request(counted_app):
    # The lock marks the sessions it ends, so the guard answers 403 account_locked from the one
    # session read, without reading the user (SPEC §4 /account).
    from accounts import user_service as users
    url, ctx, counter = counted_app
    locked, live = register_device(url), register_device(url)
    bearer_login(locked)
    bearer_login(live)
    users.lock_account(ctx, user_uuid=locked.key_file.user_uuid)
    settle_background(ctx)
    counter.take()
    for _ in range(2):
        response = locked.request("GET", "/session/me")
        assert (response.status_code, response.json()["code"]) == (403, "account_locked")
        assert counter.take() == Counter({"GetItem": 1})
        assert live.request("GET", "/session/me").status_code == 200
        assert counter.take() == Counter({"GetItem": 1})


def _login_calls(url: str, ctx, counter, client, *, bound: bool = False, **options) -> Counter:
    """The calls of one POST /login/ of `client` (with a DPoP proof if `bound`), background work
    included, by (operation, table)."""
    challenge = client.http.post(url + "/login/challenge", timeout=10).json()["challenge"]
    key_file = client.key_file
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge), **options}
    settle_background(ctx)
    counter.take()
    headers = {"DPoP": client.proof("POST", url + "/login/")} if bound else {}
    response = client.http.post(url + "/login/", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == ("DPoP" if bound else "Bearer")
    client._keep_tokens(response.json())
    settle_background(ctx)
    return counter.take_by_table()


def _by_operation(calls: Counter) -> Counter:
    return Counter({operation: n for (operation, _), n in calls.items()})


def test_login_refresh_and_challenge_budgets(counted_app):
    url, ctx, counter = counted_app
    client = register_device(url)
    client.login(PASSWORD)  # the first sign-in also stores its "Wasn't you?" link: same calls
    settle_background(ctx)
    counter.take()
    assert client.http.post(url + "/login/challenge", timeout=10).status_code == 201
    assert counter.take() == CHALLENGE_CALLS
    for bound in (False, True):  # a re-login of the same device: its old session ends in the transaction
        calls = _login_calls(url, ctx, counter, client, bound=bound)  # a proof is spent in the transaction
        assert _by_operation(calls) == LOGIN_CALLS, calls
    client.refresh()  # bound: its proof is spent in the rotation's transaction, and nothing is read first
    assert counter.take() == Counter({"TransactWriteItems": 1})
    bearer_login(client)
    settle_background(ctx)
    counter.take()
    client.refresh()  # bearer: the same one write
    assert counter.take() == Counter({"TransactWriteItems": 1})


def test_a_login_with_its_challenge_is_three_calls_and_its_history_row_commits_with_it(counted_app):
    # Issue 44: challenge + POST /login/ in 3 calls, one after the other (so 3 round trips), and the
    # success row is an entry of the login's TransactWriteItems, not a write of its own.
    url, ctx, counter = counted_app
    client = register_device(url)
    client.login(PASSWORD)
    written: list[set] = []

    def tables_of(model, params, **_):
        if model.name == "TransactWriteItems":
            written.append({next(iter(item.values()))["TableName"] for item in params["TransactItems"]})
    ctx.dynamodb.meta.events.register("before-parameter-build.dynamodb", tables_of)
    settle_background(ctx)
    counter.take()
    client.login(PASSWORD)
    settle_background(ctx)
    assert counter.take() == CHALLENGE_CALLS + LOGIN_CALLS
    assert sum((CHALLENGE_CALLS + LOGIN_CALLS).values()) == 3
    assert len(written) == 2 and ctx.tables.login_history in written[1], written


def test_a_passkey_login_adds_one_transaction_that_spends_its_assertion(counted_app):
    """Its credential and challenge ride in the login's batch read; the challenge's use and the
    counter's move are one TransactWriteItems of their own, before the device's checks."""
    url, ctx, counter = counted_app
    client = register_device(url)
    client.login(PASSWORD)
    authenticator = SoftAuthenticator(ctx.public_url())
    options = client.request("POST", "/account/passkeys/options", json={"password": PASSWORD}).json()
    assert client.request("POST", "/account/passkeys",
                          json={"credential": authenticator.create(options)}).status_code == 201
    client.logout()
    settle_background(ctx)
    counter.take()
    options = client.passkey_options(username=client.key_file.username)
    assert counter.take() == Counter({"GetItem": 1, "Query": 1, "TransactWriteItems": 1})  # owner, passkeys,
    #                                                        and the challenge with its per-IP rate limit
    client.login(passkey=authenticator.get(options))
    settle_background(ctx)
    calls = counter.take_by_table()
    assert _by_operation(calls) == CHALLENGE_CALLS + LOGIN_CALLS + Counter({"TransactWriteItems": 1}), calls


def test_a_login_that_evicts_costs_the_same(counted_app):
    url, ctx, counter = counted_app
    first = register_device(url)
    first.login(PASSWORD)
    second = add_device(ctx, first)
    second.login(PASSWORD, force=True)   # first sign-in of the second device, evicting the first
    calls = _login_calls(url, ctx, counter, first, force=True)  # and back
    # and the displaced device's mail: written to the outbox, then marked sent
    assert _by_operation(calls) == LOGIN_CALLS + Counter({"PutItem": 1, "UpdateItem": 1}), calls


def test_qr_redemption_budget(counted_app):
    url, ctx, counter = counted_app
    first = register_device(url)
    first.login(PASSWORD)
    qr_code = first.request_pairing()["qr_code"]
    settle_background(ctx)
    counter.take()
    Client(url).pair(qr_code, username=first.key_file.username, password=PASSWORD)
    settle_background(ctx)
    calls = counter.take()
    assert sum(calls.values()) <= QR_REDEMPTION_BUDGET, calls


def test_no_endpoint_calls_scan(counted):
    url, counter = counted
    a = register_device(url)
    a.login(PASSWORD)
    for method, path in [("GET", "/session/me"), ("GET", "/session/list"), ("GET", "/session/history"),
                         ("GET", "/device/list"), ("GET", "/readyz")]:
        a.request(method, path)
    a.refresh()
    a.logout()
    assert "Scan" not in counter.take()


@pytest.mark.parametrize("certificate_of", ["named_user", "other_user"])
def test_failed_login_calls_are_the_same_for_known_and_unknown_usernames(counted_app, certificate_of):
    # An attacker holding some device probes usernames with a wrong password; whichever device it
    # holds, the DynamoDB calls (operation and table, background work included) must not tell a
    # registered username from an unregistered one.
    url, ctx, counter = counted_app
    device = register_device(url)
    known = device.key_file.username if certificate_of == "named_user" else register_device(url).key_file.username
    calls = {}
    for kind, username in (("known", known), ("unknown", "nobody" + secrets.token_hex(6))):
        challenge = device.http.post(url + "/login/challenge", timeout=10).json()["challenge"]
        body = {"username": username, "password": "not the password", "challenge": challenge,
                "client_cert": device.key_file.client_cert_b64(),
                "signature": sign_challenge(device.key_file.private_key(), challenge)}
        settle_background(ctx)
        counter.take()
        response = device.http.post(url + "/login/", json=body, timeout=30)
        assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")
        settle_background(ctx)
        calls[kind] = counter.take_by_table()
    assert calls["known"] == calls["unknown"]
    assert calls["known"][("PutItem", ctx.tables.login_history)] == 1  # the known user's history row
    # ... while the unknown name's same write stores nothing.
    from accounts.credential_service import NO_SUCH_USER
    stored = ctx.dynamodb.query(TableName=ctx.tables.login_history, KeyConditionExpression="user_uuid = :u",
                                ExpressionAttributeValues={":u": {"S": NO_SUCH_USER.user_uuid}})
    assert stored["Items"] == []


def test_readiness_is_one_batch_read_with_no_table_listing(base_config):
    # Production roles have no ListTables/DescribeTable; a probe must not cost more than one read.
    app = create_app({**base_config, "table_prefix": f"ready{secrets.token_hex(4)}_"})
    ctx = app.extensions["citylogin"]
    counter = CallCounter(ctx.readiness_dynamodb)
    with serving(app) as url:
        assert [requests.get(url + "/readyz", timeout=10).status_code for _ in range(3)] == [200] * 3
        assert counter.take() == Counter({"BatchGetItem": 3})
        ctx.dynamodb.delete_table(TableName=ctx.tables.rate_limits)
        ctx.dynamodb.get_waiter("table_not_exists").wait(TableName=ctx.tables.rate_limits)
        response = requests.get(url + "/readyz", timeout=10)
        assert (response.status_code, response.json()["code"]) == (503, "service_unavailable")


def test_the_question_at_the_limit_and_a_chosen_answer_cost_no_call_more(counted_app):
    """Issue 83: the 409 concurrent_login lists every device that could go (names, classes, clients, apps,
    current, default) from the presence the login's one batch read brings, and a confirmation naming the
    device to sign out costs what one taking the default costs."""
    from citylogin.client.api import ConcurrentLoginRequired
    url, ctx, counter = counted_app
    first = register_device(url)
    first.login(PASSWORD)
    second, third = add_device(ctx, first), add_device(ctx, first)

    def asked(device: Client) -> tuple[ConcurrentLoginRequired, Counter]:
        settle_background(ctx)
        counter.take()
        with pytest.raises(ConcurrentLoginRequired) as refused:
            device.login(PASSWORD)
        settle_background(ctx)
        return refused.value, counter.take()

    def confirmed(device: Client, token: str, displace: list[str]) -> Counter:
        settle_background(ctx)
        counter.take()
        device._keep_tokens(device._post("/login/confirm", {"confirm_token": token, "displace": displace}, bind=True))
        settle_background(ctx)
        return counter.take()

    question, question_calls = asked(second)
    assert len(question.active_devices) == 1 and question.active_devices[0]["default"]
    reads = Counter({op: n for op, n in question_calls.items() if op in {"GetItem", "BatchGetItem", "Query", "Scan"}})
    assert reads == Counter({"BatchGetItem": 1}), question_calls
    by_default = confirmed(second, question.confirm_token, [])
    question, again = asked(third)
    assert again == question_calls
    chosen = confirmed(third, question.confirm_token, [question.active_devices[0]["session_id"]])
    assert chosen == by_default, (chosen, by_default)
