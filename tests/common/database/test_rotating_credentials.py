"""Credentials as AWS hands them out (issue 33): temporary keys that rotate every ROTATE seconds,
fetched by botocore's own providers (the ECS container endpoint, web identity through STS), and a
DynamoDB that checks every signature (tests/support/aws_credentials.py). The lean client signs each
call with what botocore holds, so it crosses rotations without a refusal; a failing credentials
source or a clock DynamoDB will not accept is a 503 naming its cause; a client 15 minutes behind
is corrected once (every call in flight then retries on the corrected clock) and never loops."""
from __future__ import annotations

import base64
import logging
import os
import threading
import time
import uuid
from collections import Counter
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import ClientError

from common.database import dynamo
from common.database.dynamo_client import CREDENTIALS_RETRY_AFTER, LeanDynamoDBClient
from tests.conftest import RAISED_LIMITS
from tests.support.aws_credentials import (MANDATORY, CheckingFront, ContainerCredentials, KeyIssuer, WebIdentity,
                                           chain_environment)
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device, settle_background
from common.runtime.context import AppContext

ROTATE = 2        # seconds between generations of keys
ROTATIONS = 4     # each soak crosses at least this many
THREADS = 8
KEK = base64.b64encode(b"k" * 32).decode()  # the key ring's key-encryption key, shared by the module's apps
FIFTEEN_MINUTES = 900.0
# A request while the credentials source fails: botocore's container fetch makes 3 attempts 1 s
# apart (3 s), and a caller may first wait for another thread's own failing fetch (measured: 6 s).
CREDENTIALS_OUTAGE_BUDGET = 15.0


@pytest.fixture
def chain(monkeypatch, tmp_path) -> Iterator[Callable[[dict[str, str]], None]]:
    """use(provider_environment): the credential chain of a fresh default boto3 session then holds
    only that provider (no AWS_* of the developer's, empty config files, no instance metadata)."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    def use(provider: dict[str, str]) -> None:
        for name, value in chain_environment(tmp_path, **provider).items():
            monkeypatch.setenv(name, value)

    yield use
    boto3.DEFAULT_SESSION = None


@pytest.fixture
def issuer():
    with KeyIssuer(ROTATE) as rotating:
        yield rotating


@pytest.fixture
def front(dynamodb_endpoint, issuer):
    with CheckingFront(dynamodb_endpoint, issuer) as checking:
        yield checking


@pytest.fixture(scope="module")
def table(dynamodb_endpoint) -> str:
    """A table made on DynamoDB Local directly (the front checks only the data plane's callers)."""
    name = f"rotating_{uuid.uuid4().hex[:8]}"
    local = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=30)
    local.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                       KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                             {"AttributeName": "sk", "AttributeType": "S"}])
    local.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def through_the_chain(front: CheckingFront) -> Any:
    client = dynamo.make_client(region="us-east-1", endpoint_url=front.url, local=False)
    assert isinstance(client, LeanDynamoDBClient)
    return client


def one_round(client: Any, table: str, partition: str, n: int) -> None:
    """PutItem, GetItem, Query and TransactWriteItems, each checked."""
    key = {"pk": {"S": partition}, "sk": {"S": f"{n:06d}"}}
    client.put_item(TableName=table, Item={**key, "n": {"N": str(n)}})
    assert client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["n"] == {"N": str(n)}
    assert client.query(TableName=table, KeyConditionExpression="pk = :p", ConsistentRead=True, Limit=3,
                        ExpressionAttributeValues={":p": key["pk"]})["Items"]
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": {"S": partition + "-tx"}, "sk": {"S": f"{n:06d}"}}}},
        {"Update": {"TableName": table, "Key": {"pk": {"S": partition + "-tx"}, "sk": {"S": "count"}},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}])


def signed_since(front: CheckingFront, first: int) -> list[int]:
    """The generations at or after `first` that signed a request the front accepted."""
    with front.lock:
        return [g for g in front.generations_seen if g >= first]


def soak(client: Any, table: str, issuer: KeyIssuer, front: CheckingFront) -> tuple[int, list[BaseException]]:
    """THREADS threads doing rounds until ROTATIONS rotations have passed and the client has signed
    with ROTATIONS generations (a starved process may sleep through one): (rounds, errors)."""
    first, stop, rounds = issuer.current().number, threading.Event(), Counter[int]()
    errors: list[BaseException] = []
    prefix = uuid.uuid4().hex[:8]

    def work(worker: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                one_round(client, table, f"{prefix}-{worker}", n)
            except Exception as exc:  # every error is the finding: the test lists them
                errors.append(exc)
            n += 1
        rounds[worker] = n

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + ROTATIONS * ROTATE + 30
    while (issuer.current().number < first + ROTATIONS or len(signed_since(front, first)) < ROTATIONS) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return sum(rounds.values()), errors


def assert_crossed_rotations(client: Any, table: str, issuer: KeyIssuer, front: CheckingFront, errors: list) -> None:
    """No error, no refusal, every generation used, the newest one last; the soak's first keys,
    more than a rotation old, are refused now (so the front did check them)."""
    assert errors == [], errors[:3]
    assert front.refusals == {}
    assert len(front.generations_seen) >= ROTATIONS, front.accepted
    newest = issuer.wait_until_refreshed()
    client.get_item(TableName=table, Key={"pk": {"S": "any"}, "sk": {"S": "any"}})
    assert front.last_generation == newest.number
    old = issuer.generation_of_number(front.generations_seen[0])
    with pytest.raises(ClientError) as refused:
        lean_client(front, old.credentials()).get_item(TableName=table, Key={"pk": {"S": "any"}, "sk": {"S": "any"}})
    assert dynamo.error_code(refused.value) == "ExpiredTokenException"


def lean_client(front: CheckingFront, credentials: Credentials, clock: Callable[[], float] = time.time,
                max_attempts: int = 2) -> LeanDynamoDBClient:
    """A lean client with these credentials and clock, as make_client builds it."""
    inner = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=front.url,
                         aws_access_key_id="unused", aws_secret_access_key="unused")
    return LeanDynamoDBClient(inner, credentials=credentials, connect_timeout=1, read_timeout=2,
                              max_pool_connections=4, max_attempts=max_attempts, parameter_validation=False,
                              clock=clock)


def no_secret_in(text: str, issuer: KeyIssuer) -> bool:
    return not any(secret in text for secret in issuer.all_secrets())


def test_the_ecs_container_credentials_rotate_under_eight_threads_without_a_refusal(
        chain, issuer, front, table, caplog):
    with ContainerCredentials(issuer) as container:
        chain(container.environment())
        client = through_the_chain(front)
        rounds, errors = soak(client, table, issuer, front)
        assert_crossed_rotations(client, table, issuer, front, errors)
    assert rounds > THREADS * ROTATIONS
    # botocore fetched once per generation, never on every call: the Expiration is what it needs
    assert ROTATIONS <= container.fetches <= ROTATIONS + 3 and container.refused == 0
    assert no_secret_in(caplog.text, issuer)


def test_web_identity_credentials_rotate_with_their_token_file_without_a_refusal(
        chain, issuer, front, table, tmp_path, caplog):
    with WebIdentity(issuer, tmp_path) as sts:
        chain(sts.environment())
        client = through_the_chain(front)
        rounds, errors = soak(client, table, issuer, front)
        assert_crossed_rotations(client, table, issuer, front, errors)
    assert rounds > THREADS * ROTATIONS
    # each refresh read the token file anew: STS answers only the current token, and refused none
    assert sts.refusals == {} and ROTATIONS <= sts.calls <= ROTATIONS + 3
    assert no_secret_in(caplog.text, issuer)


def test_the_front_refuses_a_wrong_secret_a_wrong_token_and_an_unknown_key(front, issuer, table):
    current = issuer.current()
    key = {"pk": {"S": "any"}, "sk": {"S": "any"}}
    lean_client(front, current.credentials()).get_item(TableName=table, Key=key)  # the right ones pass
    cases = {"InvalidSignatureException": Credentials(current.access_key, "wrong" + current.secret_key[5:],
                                                      current.token),
             "UnrecognizedClientException": Credentials(current.access_key, current.secret_key, "wrong-token"),
             "UnrecognizedClientException ": Credentials("ASIAUNKNOWNKEY00000", current.secret_key, current.token)}
    for code, credentials in cases.items():
        with pytest.raises(ClientError) as refused:
            lean_client(front, credentials).get_item(TableName=table, Key=key)
        assert dynamo.error_code(refused.value) == code.strip()
        assert dynamo.outage_cause(refused.value) == "credentials"
    assert front.refusals == {"InvalidSignatureException": 1, "UnrecognizedClientException": 2}
    assert front.last_refusal is not None and front.last_refusal[1].startswith("The security token")


def test_while_one_thread_refreshes_another_signs_with_the_keys_botocore_holds(dynamodb_endpoint, issuer, table):
    """botocore's advisory refresh is one thread's: another thread that finds it under way signs with
    the keys botocore holds, two rotations old here, for as long as it takes (a busy machine's
    container endpoint took 2.7 s, and the AWS walk-through's strict front refused such a call). AWS
    accepts those keys until their Expiration: the front that stands in for it under a whole server
    accepts them until botocore's mandatory moment, and the new keys sign once the refresh is done."""
    held = issuer.current()
    asked, answer = threading.Event(), threading.Event()

    def metadata(generation) -> dict[str, str]:
        return {"access_key": generation.access_key, "secret_key": generation.secret_key,
                "token": generation.token, "expiry_time": generation.expiration_text}

    def slow_refresh() -> dict[str, str]:
        asked.set()
        assert answer.wait(60)
        return metadata(issuer.current())

    credentials = RefreshableCredentials.create_from_metadata(metadata(held), slow_refresh, "container-role")
    key = {"pk": {"S": "any"}, "sk": {"S": "any"}}
    with CheckingFront(dynamodb_endpoint, issuer, keeps_rotated_keys=True) as front, \
            CheckingFront(dynamodb_endpoint, issuer) as strict:
        client = lean_client(front, credentials)
        deadline = time.monotonic() + 60
        while issuer.current().number < held.number + 2:          # the KeyIssuer rotates on its own
            assert time.monotonic() < deadline
            time.sleep(0.05)
        errors: list[BaseException] = []

        def refresh_and_call() -> None:
            try:
                client.get_item(TableName=table, Key=key)
            except Exception as exc:  # the finding: the test lists it
                errors.append(exc)

        refreshing = threading.Thread(target=refresh_and_call)
        refreshing.start()
        assert asked.wait(60)                                      # it holds botocore's refresh lock now
        client.get_item(TableName=table, Key=key)
        assert front.last_generation == held.number <= issuer.current().number - 2
        with pytest.raises(ClientError) as refused:
            lean_client(strict, credentials).get_item(TableName=table, Key=key)
        assert dynamo.error_code(refused.value) == "ExpiredTokenException"
        answer.set()
        refreshing.join(60)
        assert errors == [] and not refreshing.is_alive()
        client.get_item(TableName=table, Key=key)
        assert front.last_generation is not None and front.last_generation >= held.number + 2
        assert front.refusals == {}


def app_on_front(make_server, front: CheckingFront) -> tuple[str, AppContext]:
    """The all-in-one app signing with the credential chain, through the front; its tables and key
    ring made first by an app on DynamoDB Local directly (the same table prefix)."""
    make_server(key_encryption_key=KEK, **RAISED_LIMITS)
    # Devices log in as fast as they can until the keys have rotated: RAISED_LIMITS allows the challenges.
    return make_server(dynamodb_endpoint_url=front.url, dynamodb_local=False, create_tables=False,
                       public_url="https://login.example.com", key_encryption_key=KEK, **RAISED_LIMITS)


def test_the_app_serves_devices_across_rotations(chain, issuer, front, make_server, caplog):
    with ContainerCredentials(issuer) as container:
        chain(container.environment())
        url, _ = app_on_front(make_server, front)
        first, deadline = issuer.current().number, time.monotonic() + 240
        # Until the app has signed with ROTATIONS generations: a busy machine may run one device's
        # round past a whole generation, which the app then never holds, so the issuer's count is no end.
        while len(signed_since(front, first)) < ROTATIONS:
            assert time.monotonic() < deadline, (front.accepted, front.refusals)
            client = register_device(url)
            client.login(PASSWORD)
            client.refresh()
            assert client.get_json("/session/me")
    assert front.refusals == {}
    assert no_secret_in(caplog.text, issuer)


def outage_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "common.web.error_handlers"
            and r.levelno == logging.WARNING]


def test_a_failing_container_endpoint_is_a_503_naming_credentials_then_serves_again(
        chain, dynamodb_endpoint, make_server, caplog):
    # Keys whose Expiration puts them inside botocore's mandatory window at the next rotation.
    with KeyIssuer(ROTATE, expires_after=MANDATORY) as issuer, CheckingFront(dynamodb_endpoint, issuer) as front, \
            ContainerCredentials(issuer) as container:
        chain(container.environment())
        url, ctx = app_on_front(make_server, front)
        client = register_device(url)
        client.login(PASSWORD)
        settle_background(ctx)
        container.failing = True
        time.sleep(max(0.0, issuer.refresh_due() - time.time()) + 0.2)  # botocore must refresh now
        caplog.clear()
        started = time.monotonic()
        refused = client.request("GET", "/session/me")
        took = time.monotonic() - started
        warnings = outage_warnings(caplog)
        container.failing = False
        time.sleep(CREDENTIALS_RETRY_AFTER)  # the failure is answered from memory until then
        served = client.request("GET", "/session/me")
    assert problem(refused)[:2] == (503, "service_unavailable") and refused.headers["Retry-After"]
    assert took < CREDENTIALS_OUTAGE_BUDGET, took
    assert len(warnings) == 1 and warnings[0].startswith("DynamoDB unavailable (credentials:"), warnings
    assert served.status_code == 200, served.text
    assert no_secret_in(caplog.text, issuer)


def test_requests_meeting_a_failing_container_endpoint_together_do_not_each_wait_it_out(
        chain, dynamodb_endpoint, make_server):
    """botocore's mandatory refresh makes every waiting caller fetch again in turn (3 attempts a
    second apart each): the signer asks it once and answers the others with that failure."""
    with KeyIssuer(ROTATE, expires_after=MANDATORY) as issuer, CheckingFront(dynamodb_endpoint, issuer) as front, \
            ContainerCredentials(issuer) as container:
        chain(container.environment())
        url, ctx = app_on_front(make_server, front)
        devices = [register_device(url) for _ in range(THREADS)]
        for device in devices:
            device.login(PASSWORD)
        settle_background(ctx)
        container.failing, container.refused = True, 0
        time.sleep(max(0.0, issuer.refresh_due() - time.time()) + 0.2)  # botocore must refresh now
        answers: list[Any] = []
        threads = [threading.Thread(target=lambda d=d: answers.append(d.request("GET", "/session/me")))
                   for d in devices]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fetched = container.refused
        container.failing = False
    assert [problem(a)[:2] for a in answers] == [(503, "service_unavailable")] * THREADS
    # One caller's fetch (botocore tries the endpoint 3 times), perhaps a second one after
    # CREDENTIALS_RETRY_AFTER; each of the 8 callers fetching in turn would be 24.
    assert fetched <= 6, fetched


def behind(seconds: float) -> Callable[[], float]:
    return lambda: time.time() - seconds


class RunawayClock:
    """A server clock that jumps 15 minutes further each time it is read: it refuses every
    signature as expired, even one made on the time it gave a moment ago. After `limit` reads it
    shows the real time again, so that a client that kept correcting would end up served (and
    fail its test) rather than hang."""

    def __init__(self, limit: int = 20) -> None:
        self.reads, self.limit = 0, limit

    def __call__(self) -> float:
        self.reads += 1
        return time.time() + (FIFTEEN_MINUTES * self.reads if self.reads <= self.limit else 0.0)


@pytest.fixture
def steady(dynamodb_endpoint):
    """A front whose keys never rotate: these tests are about time alone."""
    with KeyIssuer(None) as keys, CheckingFront(dynamodb_endpoint, keys) as checking:
        yield keys, checking


def test_a_client_fifteen_minutes_behind_is_refused_once_then_signs_on_the_servers_time(steady, table, caplog):
    keys, front = steady
    client = lean_client(front, keys.current().credentials(), clock=behind(FIFTEEN_MINUTES))
    key = {"pk": {"S": "skew"}, "sk": {"S": "skew"}}
    client.put_item(TableName=table, Item=key)
    assert front.refusals == {"InvalidSignatureException": 1}
    assert front.last_refusal is not None and front.last_refusal[1].startswith("Signature expired: ")
    for _ in range(5):
        assert client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == key
    assert front.refusals == {"InvalidSignatureException": 1} and sum(front.accepted.values()) == 6
    assert [r for r in caplog.records if "clock skew" in r.getMessage()]


def test_calls_in_flight_when_the_skew_shows_are_all_served(steady, table):
    # Each was signed on the old clock: the first refusal corrects it, the others retry on it.
    keys, front = steady
    client = lean_client(front, keys.current().credentials(), clock=behind(FIFTEEN_MINUTES))
    start, outcomes = threading.Barrier(THREADS), []

    def call() -> None:
        start.wait()
        try:
            client.get_item(TableName=table, Key={"pk": {"S": "skew"}, "sk": {"S": "skew"}})
            outcomes.append("served")
        except ClientError as exc:
            outcomes.append(dynamo.error_code(exc))

    threads = [threading.Thread(target=call) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == ["served"] * THREADS
    assert 1 <= front.refusals["InvalidSignatureException"] <= THREADS


@pytest.mark.parametrize(("server", "attempts"), [("no Date", 1), ("a runaway clock", 2)])
def test_a_server_that_keeps_refusing_the_time_gets_one_attempt_more_at_most(steady, table, server, attempts):
    keys, front = steady
    if server == "no Date":
        front.clock, front.send_date = (lambda: time.time() + FIFTEEN_MINUTES), False
    else:
        front.clock = RunawayClock()
    client = lean_client(front, keys.current().credentials(), max_attempts=3)
    with pytest.raises(ClientError) as refused:
        client.get_item(TableName=table, Key={"pk": {"S": "skew"}, "sk": {"S": "skew"}})
    assert front.refusals == {"InvalidSignatureException": attempts} and not front.accepted
    assert dynamo.error_code(refused.value) == "InvalidSignatureException"
    assert dynamo.outage_cause(refused.value) == "clock skew"


def test_an_app_whose_dynamodb_keeps_refusing_the_time_answers_503_naming_clock_skew(
        chain, issuer, front, make_server, caplog):
    with ContainerCredentials(issuer) as container:
        chain(container.environment())
        url, ctx = app_on_front(make_server, front)
        client = register_device(url)
        client.login(PASSWORD)
        settle_background(ctx)
        front.clock = RunawayClock(limit=1000)
        caplog.clear()
        refused = client.request("GET", "/session/me")
        warnings = outage_warnings(caplog)
        front.clock = time.time  # the app's client learnt a wrong offset: it corrects it, once
        served = client.request("GET", "/session/me")
    assert problem(refused)[:2] == (503, "service_unavailable") and refused.headers["Retry-After"]
    assert len(warnings) == 1 and warnings[0].startswith("DynamoDB unavailable (clock skew:"), warnings
    assert served.status_code == 200, served.text
