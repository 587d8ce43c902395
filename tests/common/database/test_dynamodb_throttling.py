"""Throttling and server errors as DynamoDB sends them, at the lean client (common/database/dynamo_client.py):
botocore's standard retries take each of them, with backoff, up to max_attempts; one that clears
within the attempts is answered, one that persists is raised with its code and named as an outage
(common.database.dynamo.outage_cause), never a parse crash. DynamoDB Local never throttles, so the faults
come from tests/support/dynamo_faults.py in front of it."""
from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError, HTTPClientError

from common.database import dynamo
from common.database.dynamo_client import LeanDynamoDBClient
from tests.conftest import unique_name
from tests.support.dynamo_faults import DynamoFaults, Shape

MAX_ATTEMPTS = 2  # CITYLOGIN_DYNAMODB_MAX_ATTEMPTS's default
KEY = {"pk": {"S": "k1"}}
ITEM = {**KEY, "name": {"S": "alice"}}
# botocore's standard mode retries the throttling codes and 500/502/503/504
THROTTLING = {Shape.PROVISIONED_THROUGHPUT_EXCEEDED: "ProvisionedThroughputExceededException",
              Shape.THROTTLING: "ThrottlingException", Shape.REQUEST_LIMIT_EXCEEDED: "RequestLimitExceeded"}
SERVER_ERRORS = {Shape.INTERNAL_SERVER_ERROR: "InternalServerError",
                 Shape.HTML_503: "503", Shape.EMPTY_503: "503"}  # a load balancer's 503 has no code but its status
RETRIED = [*THROTTLING, *SERVER_ERRORS, Shape.CRC32_MISMATCH]
# More retries than botocore's retry quota (500) pays for at 14 a retry, unless each success pays its retry back.
BURST = 60


def client_for(endpoint_url: str, *, max_attempts: int = MAX_ATTEMPTS) -> LeanDynamoDBClient:
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url, max_attempts=max_attempts)
    assert isinstance(client, LeanDynamoDBClient)
    return client


@pytest.fixture(scope="module")
def table(dynamodb_endpoint) -> str:
    name = unique_name("throttled")
    client = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=30)  # a busy Local
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    client.get_waiter("table_exists").wait(TableName=name)
    client.put_item(TableName=name, Item=ITEM)
    return name


@pytest.fixture
def faults(dynamodb_endpoint):
    with DynamoFaults(dynamodb_endpoint) as proxy:
        yield proxy


@pytest.fixture
def retry_log(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="botocore.retries.standard")
    return caplog


def botocore_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The backoff delays botocore's standard retry handler chose, as it logs them."""
    return [float(r.getMessage().rpartition(" ")[2]) for r in caplog.records
            if r.name == "botocore.retries.standard" and r.getMessage().startswith("Retry needed, retrying")]


def assert_waited_between_attempts(faults: DynamoFaults, caplog: pytest.LogCaptureFixture) -> None:
    """Each retry came after the delay botocore chose for it, and no sooner."""
    seen = [exchange.at for exchange in faults.exchanges]
    gaps = [later - earlier for earlier, later in zip(seen, seen[1:], strict=False)]
    delays = botocore_delays(caplog)
    assert len(delays) == len(gaps), (gaps, delays)
    assert all(gap >= delay for gap, delay in zip(gaps, delays, strict=True)), (gaps, delays)


@pytest.mark.parametrize("shape", RETRIED, ids=[s.name for s in RETRIED])
def test_a_fault_that_clears_within_the_attempts_is_retried_after_a_backoff_and_answered(table, faults, shape,
                                                                                        retry_log):
    faults.fail(shape, times=MAX_ATTEMPTS - 1)
    answer = client_for(faults.url).get_item(TableName=table, Key=KEY)
    assert answer["Item"] == ITEM
    assert answer["ResponseMetadata"]["RetryAttempts"] == MAX_ATTEMPTS - 1
    assert faults.attempts("GetItem") == MAX_ATTEMPTS
    assert_waited_between_attempts(faults, retry_log)


@pytest.mark.parametrize("shape", [*THROTTLING, *SERVER_ERRORS], ids=[s.name for s in [*THROTTLING, *SERVER_ERRORS]])
def test_a_fault_that_persists_is_raised_with_its_code_after_max_attempts_and_is_an_outage(table, faults, shape,
                                                                                          retry_log):
    faults.fail(shape)
    with pytest.raises(ClientError) as failed:
        client_for(faults.url).get_item(TableName=table, Key=KEY)
    assert dynamo.error_code(failed.value) == {**THROTTLING, **SERVER_ERRORS}[shape]
    assert dynamo.outage_cause(failed.value) == ("throttling" if shape in THROTTLING else "server error")
    assert faults.attempts("GetItem") == MAX_ATTEMPTS
    assert_waited_between_attempts(faults, retry_log)


def test_a_throttling_answer_keeps_dynamodbs_request_id_and_throttling_reasons(table, faults):
    faults.fail(Shape.PROVISIONED_THROUGHPUT_EXCEEDED)
    with pytest.raises(ClientError) as failed:
        client_for(faults.url, max_attempts=1).get_item(TableName=table, Key=KEY)
    response = failed.value.response
    assert len(response["ResponseMetadata"]["RequestId"]) == 52
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ThrottlingReasons"] == [{"reason": "TableReadProvisionedThroughputExceeded",
                                              "resource": f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}"}]


def test_every_retry_up_to_max_attempts_waits_its_backoff(table, faults, retry_log):
    faults.fail(Shape.INTERNAL_SERVER_ERROR)
    with pytest.raises(ClientError):
        client_for(faults.url, max_attempts=4).get_item(TableName=table, Key=KEY)
    assert faults.attempts("GetItem") == 4
    assert_waited_between_attempts(faults, retry_log)


def test_a_burst_of_faults_each_cleared_by_its_retry_never_runs_out_of_retries(table, faults):
    # botocore's retry quota (500) pays 14 for each retry of a server error and takes it back when the
    # retry succeeds: the lean client must hand it back (after-call), or call 36 would go unretried.
    faults.fail(Shape.INTERNAL_SERVER_ERROR, once_per_request=True)
    client = client_for(faults.url)
    for n in range(BURST):
        assert "Item" not in client.get_item(TableName=table, Key={"pk": {"S": f"burst-{n}"}})
    assert faults.answered[("GetItem", Shape.INTERNAL_SERVER_ERROR)] == BURST
    assert faults.forwarded["GetItem"] == BURST


def test_an_answer_damaged_on_every_attempt_is_a_connection_outage_not_a_parse_crash(table, faults):
    faults.fail(Shape.CRC32_MISMATCH)
    with pytest.raises(HTTPClientError) as failed:
        client_for(faults.url).get_item(TableName=table, Key=KEY)
    assert dynamo.outage_cause(failed.value) == "connection"
    assert faults.attempts("GetItem") == MAX_ATTEMPTS


def test_a_transaction_cancelled_for_a_throttled_item_is_throttling_answered_at_once(table, faults):
    # TransactionCanceledException is none of the codes botocore's standard mode retries, and the
    # transaction-conflict retry (common/database/dynamo.py) takes conflicts only: the caller answers 503.
    faults.fail(Shape.THROTTLED_TRANSACTION)
    items = [{"Put": {"TableName": table, "Item": {"pk": {"S": f"tx-{n}"}}}} for n in range(2)]
    with pytest.raises(ClientError) as failed:
        client_for(faults.url).transact_write_items(TransactItems=items)
    assert dynamo.cancellation_codes(failed.value) == ["ThrottlingError", "None"]
    assert dynamo.outage_cause(failed.value) == "throttling"
    assert faults.attempts("TransactWriteItems") == 1
