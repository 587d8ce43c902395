"""DynamoDB over TLS, as in front of Amazon DynamoDB: DynamoDB Local behind nginx with a private CA
(tests/support/dynamodb_tls.py). With AWS_CA_BUNDLE naming that CA, the client made by
common.database.dynamo.make_client verifies the endpoint, serves data-plane and control-plane calls, keeps
its one connection alive, and reconnects by itself when nginx restarts. A certificate it cannot
trust (another CA, no bundle, another name) fails the call with botocore's SSLError, an outage
of cause "TLS" that an app answers as 503 and logs once per burst; it never falls back to an
unverified or a plain connection: nginx logs no request at all, only the handshakes the client
ended."""
from __future__ import annotations

import logging
import time
import uuid

import pytest
import requests
from botocore.exceptions import SSLError

from citylogin.client.api import Client
from common.database import dynamo
from common.database.dynamo_client import DATA_PLANE
from tests.support.dynamodb_tls import MISMATCHED_NAMES, TlsDynamoDB, dynamodb_behind_tls, other_ca_file
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device
from tests.support.nginx import require_nginx
from tests.support.tls import new_authority
from tests.support.waiting import wait_until

REQUEST_BUDGET = 6.0  # the defaults: 2 attempts x 2 s, with botocore's backoff between them
KEY = {"pk": {"S": "k"}}


@pytest.fixture
def tls(dynamodb_endpoint, tmp_path):
    require_nginx()
    with dynamodb_behind_tls(dynamodb_endpoint, tmp_path / "tls") as endpoint:
        yield endpoint


def make_table(client) -> str:
    name = f"tls_{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def failed_attempts(client) -> list:
    """Every attempt of `client` that failed from now on (what its retry handlers are asked about)."""
    failures: list = []
    client.meta.events.register("needs-retry.dynamodb", lambda **kwargs: failures.append(
        kwargs.get("caught_exception") or kwargs.get("response")))
    return failures


def test_data_and_control_plane_calls_are_verified_tls_and_share_one_kept_alive_connection(tls, monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))
    client = dynamo.make_client(region="us-east-1", endpoint_url=tls.url, read_timeout=30)
    table = make_table(client)  # CreateTable, DescribeTable: the boto3 client inside
    assert client.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"

    client.put_item(TableName=table, Item={**KEY, "n": {"N": "0"}})
    client.transact_write_items(TransactItems=[{"Update": {
        "TableName": table, "Key": KEY, "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
    items = client.query(TableName=table, KeyConditionExpression="pk = :k",
                         ExpressionAttributeValues={":k": {"S": "k"}})["Items"]
    reads = [client.get_item(TableName=table, Key=KEY, ConsistentRead=True)["Item"] for _ in range(50)]
    tls.stop()  # its log complete

    logged = tls.requests()
    data_plane = [r for r in logged if r.operation in DATA_PLANE]
    assert items == [{**KEY, "n": {"N": "1"}}] and all(item == items[0] for item in reads)
    assert {"CreateTable", "DescribeTable"} <= {r.operation for r in logged}
    assert {(r.protocol, r.status) for r in logged} == {("TLSv1.3", 200)}
    assert len(data_plane) == 53 and len({r.connection for r in data_plane}) == 1  # one handshake, 53 calls


def test_after_nginx_restarts_the_client_reconnects_without_an_error(tls, monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))
    client = dynamo.make_client(region="us-east-1", endpoint_url=tls.url, read_timeout=30)
    table = make_table(client)
    failures = failed_attempts(client)
    for _ in range(10):
        client.get_item(TableName=table, Key=KEY)

    tls.restart()  # its connections close: the client's idle one is dead
    answers = [client.get_item(TableName=table, Key=KEY) for _ in range(10)]
    tls.stop()

    after = tls.requests_since_restart()
    assert [a["ResponseMetadata"]["HTTPStatusCode"] for a in answers] == [200] * 10
    assert failures == []  # the dead connection was noticed before it was used: not even a retry
    assert len(after) == 10 and len({r.connection for r in after}) == 1  # one new handshake


def untrusted_by_another_ca(tls: TlsDynamoDB, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(other_ca_file(tmp_path / "other-ca.pem")))


def untrusted_without_a_bundle(tls: TlsDynamoDB, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)  # botocore's bundle: public CAs only


def untrusted_for_another_name(tls: TlsDynamoDB, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))  # the right CA ...
    tls.restart(names=MISMATCHED_NAMES)  # ... but a certificate for dynamodb.test, not 127.0.0.1


@pytest.mark.parametrize("untrusted", [untrusted_by_another_ca, untrusted_without_a_bundle,
                                       untrusted_for_another_name])
def test_an_untrusted_endpoint_fails_with_sslerror_and_gets_no_request(tls, monkeypatch, tmp_path, untrusted):
    untrusted(tls, monkeypatch, tmp_path)
    client = dynamo.make_client(region="us-east-1", endpoint_url=tls.url)

    with pytest.raises(SSLError) as data_plane:
        client.get_item(TableName="any", Key=KEY)
    # It reached nginx and ended the handshake itself, on each of its two attempts.
    wait_until(lambda: len(tls.refused_handshakes()) >= 2, timeout=30, what="2 handshakes refused")
    with pytest.raises(SSLError) as control_plane:
        client.describe_table(TableName="any")
    tls.stop()

    assert dynamo.outage_cause(data_plane.value) == "TLS" == dynamo.outage_cause(control_plane.value)
    assert tls.requests_since_restart() == []  # no request reached nginx's HTTP, let alone DynamoDB Local


@pytest.mark.parametrize("new_certificate", [
    pytest.param({"authority": new_authority("a CA the app does not trust")}, id="another CA"),
    pytest.param({"names": MISMATCHED_NAMES}, id="another name")])
def test_an_app_answers_503_and_logs_tls_once_when_the_endpoint_turns_untrusted(
        make_server, tls, monkeypatch, caplog, new_certificate):
    plain_url, _ = make_server()  # the tables and the key ring, on DynamoDB Local itself
    device = register_device(plain_url)
    device.login(PASSWORD)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca_file))
    url, _ = make_server(dynamodb_endpoint_url=tls.url, create_tables=False)
    assert timed_me(url, device)[0].status_code == 200  # served over TLS

    tls.restart(**new_certificate)
    caplog.clear()
    caplog.set_level(logging.WARNING)
    answers = [timed_me(url, device) for _ in range(6)]

    for response, took in answers:
        assert problem(response)[:2] == (503, "service_unavailable")
        assert int(response.headers["Retry-After"]) > 0
        assert took < REQUEST_BUDGET
    # The request handler's line (a stream's watcher, a sweeper would log their own: none runs here).
    outage_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("DynamoDB unavailable")]
    assert len(outage_lines) == 1 and outage_lines[0].startswith("DynamoDB unavailable (TLS: SSLError"), outage_lines
    assert all(r.exc_info is None for r in caplog.records)  # a line, not a traceback
    wait_until(tls.refused_handshakes, timeout=30, what="a handshake refused")
    tls.stop()
    assert tls.requests_since_restart() == []


def timed_me(url: str, device: Client) -> tuple[requests.Response, float]:
    headers = device.auth_headers("GET", url + "/session/me")  # a fresh proof, made before the clock starts
    started = time.monotonic()
    response = requests.get(url + "/session/me", headers=headers, timeout=30)
    return response, time.monotonic() - started
