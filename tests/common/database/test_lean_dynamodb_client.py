"""The lean DynamoDB client (common/database/dynamo_client.py) is a drop-in for boto3's on the data plane:
the same answers and error shapes from DynamoDB Local, botocore's exceptions when nothing answers,
botocore's standard retries plus the transaction-conflict retry, and SigV4 as botocore signs it."""
from __future__ import annotations

import json
import os
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from common.database import dynamo
from common.database.dynamo_client import LeanDynamoDBClient
from tests.conftest import unique_name
from tests.support.tcp_faults import _Listener, refused_endpoint

KEY = {"pk": {"S": "k1"}}
ITEM = {**KEY, "name": {"S": "alice"}, "n": {"N": "12"}, "sealed": {"B": b"\x00\x01\xff"},
        "blobs": {"BS": [b"a", b"b"]}, "m": {"M": {"B": {"S": "a map key named B"}, "x": {"N": "1"}}}}


def lean(endpoint_url: str, **options) -> LeanDynamoDBClient:
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url, **options)
    assert isinstance(client, LeanDynamoDBClient)
    return client


@pytest.fixture(scope="module")
def table(dynamodb_endpoint):
    name = unique_name("lean")
    client = lean(dynamodb_endpoint, read_timeout=30, max_attempts=1)  # a busy DynamoDB Local is slow to create
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",  # delegated to boto3
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    client.get_waiter("table_exists").wait(TableName=name)
    return name


@pytest.fixture
def client(dynamodb_endpoint):
    return lean(dynamodb_endpoint, parameter_validation=False)


def _outcome(client, name: str, params: dict[str, Any]) -> tuple:
    """A call's answer or ClientError, without what differs between two calls (ids, dates)."""
    try:
        answer, kind = getattr(client, name)(**params), "ok"
    except ClientError as exc:
        answer, kind = exc.response, type(exc).__name__
    answer = dict(answer)
    metadata = answer.pop("ResponseMetadata")
    return kind, answer, metadata["HTTPStatusCode"], metadata["RetryAttempts"], sorted(metadata)


def test_every_data_plane_answer_is_boto3s(dynamodb_endpoint, table, client):
    plain = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_endpoint,
                         aws_access_key_id="local", aws_secret_access_key="local")
    key2 = {"pk": {"S": "k2"}}
    # Each call is made by boto3, then by the lean client: each leaves the table as it found it.
    calls: list[tuple[str, dict[str, Any]]] = [
        ("put_item", {"TableName": table, "Item": ITEM}),
        ("put_item", {"TableName": table, "Item": ITEM, "ReturnValues": "ALL_OLD"}),
        ("get_item", {"TableName": table, "Key": KEY, "ConsistentRead": True}),
        ("get_item", {"TableName": table, "Key": {"pk": {"S": "never"}}, "ConsistentRead": True}),
        ("query", {"TableName": table, "KeyConditionExpression": "pk = :p", "ConsistentRead": True,
                   "ExpressionAttributeValues": {":p": {"S": "k1"}}, "ReturnConsumedCapacity": "TOTAL"}),
        ("batch_get_item", {"RequestItems": {table: {"Keys": [KEY, {"pk": {"S": "never"}}]}}}),
        ("update_item", {"TableName": table, "Key": KEY, "UpdateExpression": "SET n = :v",
                         "ExpressionAttributeValues": {":v": {"N": "13"}}, "ReturnValues": "ALL_NEW"}),
        ("transact_write_items", {"TransactItems": [{"Put": {"TableName": table, "Item": {**ITEM, **key2}}}]}),
        ("update_item", {"TableName": table, "Key": key2, "UpdateExpression": "SET n = :v",
                         "ExpressionAttributeValues": {":v": {"N": "12"}}, "ReturnValues": "ALL_OLD"}),
        ("batch_write_item", {"RequestItems": {table: [{"DeleteRequest": {"Key": key2}}]}}),
        ("delete_item", {"TableName": table, "Key": key2, "ReturnValues": "ALL_OLD"}),
        ("put_item", {"TableName": table, "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)",
                      "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
        ("get_item", {"TableName": unique_name("missing"), "Key": KEY}),
    ]
    for name, params in calls:
        expected = _outcome(plain, name, params)
        assert _outcome(client, name, params) == expected, name
    assert client.get_item(TableName=table, Key=KEY)["Item"]["sealed"] == {"B": b"\x00\x01\xff"}


def test_a_condition_failure_without_and_with_the_item(table, client):
    client.put_item(TableName=table, Item=ITEM)
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as plain:
        client.put_item(TableName=table, Item=ITEM, ConditionExpression="attribute_not_exists(pk)")
    assert dynamo.is_condition_failure(plain.value) and not dynamo.is_unavailable(plain.value)
    assert "Item" not in plain.value.response
    assert plain.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert plain.value.response["Error"]["Message"] == "The conditional request failed"
    with pytest.raises(ClientError) as returned:
        client.put_item(TableName=table, Item=ITEM, ConditionExpression="attribute_not_exists(pk)",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert dynamo.error_code(returned.value) == "ConditionalCheckFailedException"
    assert returned.value.response["Item"] == ITEM  # binary values decoded, as botocore decodes them


def test_a_cancelled_transaction_names_each_items_reason(table, client):
    client.put_item(TableName=table, Item=ITEM)
    with pytest.raises(client.exceptions.TransactionCanceledException) as cancelled:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": unique_name()}}}}])
    assert dynamo.cancellation_codes(cancelled.value) == ["ConditionalCheckFailed", "None"]
    assert not dynamo.is_unavailable(cancelled.value)


def test_a_missing_table_is_resource_not_found(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.get_item(TableName=unique_name("missing"), Key=KEY)
    assert dynamo.error_code(missing.value) == "ResourceNotFoundException"
    assert not dynamo.is_unavailable(missing.value)


def test_connection_refused_is_unavailable_and_reported_to_after_call_error():
    with refused_endpoint() as endpoint:
        client = lean(endpoint, connect_timeout=0.5, max_attempts=2)
        seen = []
        client.meta.events.register("after-call-error.dynamodb", lambda exception, **_: seen.append(exception))
        with pytest.raises(EndpointConnectionError) as refused:
            client.get_item(TableName="t", Key=KEY)
    assert dynamo.is_unavailable(refused.value) and seen == [refused.value]
    assert refused.value.kwargs["endpoint_url"] == endpoint + "/"  # the request's URL, as botocore names it


def test_a_silent_endpoint_times_out_on_each_attempt_and_is_unavailable():
    with _Listener() as black_hole:  # accepts and never answers
        client = lean(black_hole.url, read_timeout=0.3, max_attempts=2)
        with pytest.raises(ReadTimeoutError) as silent:
            client.get_item(TableName="t", Key=KEY)
        assert dynamo.is_unavailable(silent.value)
        assert len(black_hole.connections) == 2  # both attempts, each given up after its read timeout


class ScriptedDynamoDB:
    """An HTTP server that answers POSTs from a script of (status, JSON body, extra headers) and
    keeps each request's headers and body; after the script, `{}` with 200."""

    def __init__(self, script: list[tuple[int, dict, dict]]) -> None:
        self.script, self.requests = list(script), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                status, answer, extra = outer.script.pop(0) if outer.script else (200, {}, {})
                payload = json.dumps(answer).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "req-1",
                           "x-amz-crc32": str(zlib.crc32(payload)), "Content-Length": str(len(payload)), **extra}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def __enter__(self) -> "ScriptedDynamoDB":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def error(status: int, code: str, **members) -> tuple[int, dict, dict]:
    return status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code, **members}, {}


@pytest.mark.parametrize("failure", [error(500, "InternalServerError"), error(503, "ServiceUnavailable"),
                                     error(400, "ThrottlingException"),
                                     (200, {"Item": {}}, {"x-amz-crc32": "1"}),  # a body that does not match
                                     (*error(400, "ConditionalCheckFailedException")[:2], {"x-amz-crc32": "1"})],
                         ids=["500", "503", "throttled", "crc32", "crc32 of an error"])
def test_a_transient_failure_is_retried_then_answered(failure):
    with ScriptedDynamoDB([failure]) as server:
        answer = lean(server.url, max_attempts=2).get_item(TableName="t", Key=KEY)
    assert len(server.requests) == 2 and answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert answer["ResponseMetadata"]["RequestId"] == "req-1"


def test_retries_stop_at_max_attempts_with_the_last_error():
    with ScriptedDynamoDB([error(500, "InternalServerError")] * 3) as server:
        with pytest.raises(ClientError) as failed:
            lean(server.url, max_attempts=2).get_item(TableName="t", Key=KEY)
    assert len(server.requests) == 2 and dynamo.is_unavailable(failed.value)
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_a_request_error_is_not_retried():
    with ScriptedDynamoDB([error(400, "ValidationException")]) as server:
        with pytest.raises(ClientError):
            lean(server.url, max_attempts=3).get_item(TableName="t", Key=KEY)
    assert len(server.requests) == 1


def test_a_conflicted_transaction_is_retried_beyond_max_attempts():
    conflict = error(400, "TransactionCanceledException",
                     CancellationReasons=[{"Code": "TransactionConflict"}, {"Code": "None"}])
    with ScriptedDynamoDB([conflict, conflict]) as server:
        answer = lean(server.url, max_attempts=1).transact_write_items(
            TransactItems=[{"Put": {"TableName": "t", "Item": KEY}}])
    assert len(server.requests) == 3 and answer["ResponseMetadata"]["RetryAttempts"] == 2


def test_requests_are_signed_as_botocore_signs_them_with_a_session_token():
    credentials = Credentials("AKIDEXAMPLE", "secret/key", "session-token")
    with ScriptedDynamoDB([]) as server:
        inner = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=server.url,
                             aws_access_key_id="unused", aws_secret_access_key="unused")
        client = LeanDynamoDBClient(inner, credentials=credentials, connect_timeout=1, read_timeout=1,
                                    max_pool_connections=2, max_attempts=1, parameter_validation=False)
        client.transact_write_items(TransactItems=[])
    headers, body = server.requests[0]
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.TransactWriteItems"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert json.loads(body)["ClientRequestToken"]  # the idempotency token botocore adds
    authorization = headers["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == ["content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target"]
    request = AWSRequest(method="POST", url=server.url + "/", data=body,
                         headers={name: value for name, value in headers.items() if name.lower() in signed})
    request.context["timestamp"] = headers["X-Amz-Date"]
    botocore_signer = SigV4Auth(credentials, "dynamodb", "eu-west-1")
    canonical = botocore_signer.canonical_request(request)
    expected = botocore_signer.signature(botocore_signer.string_to_sign(request, canonical), request)
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{headers['X-Amz-Date'][:8]}/"
                                    "eu-west-1/dynamodb/aws4_request, ")
    assert authorization.endswith(f"Signature={expected}")


def test_hooks_see_each_call_and_may_change_its_parameters_and_answer(table, client):
    seen = []

    def count(model, params, **_):
        seen.append((model.name, params.get("TableName")))

    def hide(parsed, **_):
        parsed.pop("Item", None)

    client.put_item(TableName=table, Item=ITEM)
    client.meta.events.register("before-parameter-build.dynamodb", count)
    client.meta.events.register("after-call.dynamodb.GetItem", hide)
    assert "Item" not in client.get_item(TableName=table, Key=KEY)
    assert client.query(TableName=table, KeyConditionExpression="pk = :p",
                        ExpressionAttributeValues={":p": {"S": "k1"}})["Count"] == 1
    assert seen == [("GetItem", table), ("Query", table)]


def test_behind_a_proxy_the_client_is_boto3s(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = dynamo.make_client(region="us-east-1", endpoint_url="http://dynamodb.example:8000", local=True)
    assert not isinstance(client, LeanDynamoDBClient) and client.meta.events is not None


def test_clients_of_one_dynamodb_local_and_configuration_share_the_regular_client_but_not_their_events(
        dynamodb_endpoint, table, monkeypatch):
    first, second = lean(dynamodb_endpoint), lean(dynamodb_endpoint)
    other = lean(dynamodb_endpoint, read_timeout=7)
    assert first._inner is second._inner and other._inner is not first._inner
    seen: list[str] = []
    first.meta.events.register("before-call.dynamodb.GetItem", lambda **_: seen.append("first"))
    second.get_item(TableName=table, Key=KEY)
    assert seen == []  # a hook on one lean client is not heard by another
    first.close()  # leaves the shared client open: the other's control-plane calls go on
    assert second.describe_table(TableName=table)["Table"]["TableName"] == table
    assert lean(dynamodb_endpoint)._inner is second._inner
    # A proxy set since: a client that goes through it, not the shared one.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, local=True)
    assert not isinstance(proxied, LeanDynamoDBClient) and proxied is not second._inner


def test_clients_of_aws_never_share(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    # A session of this test's own: the process's default one would keep these credentials for the later tests.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    first = lean("https://dynamodb.eu-west-1.amazonaws.com")
    second = lean("https://dynamodb.eu-west-1.amazonaws.com")
    assert first._inner is not second._inner


def test_a_forked_process_makes_its_own_regular_client(dynamodb_endpoint, table):
    """A gunicorn worker forked from a master that made a client: sharing the master's connections, their
    answers would mix (a 400 for another request's bytes)."""
    parents = lean(dynamodb_endpoint)._inner
    child = os.fork()
    if child == 0:  # the child: its own client, which works
        try:
            mine = lean(dynamodb_endpoint)
            ok = mine._inner is not parents and mine.describe_table(TableName=table)["Table"]["TableName"] == table
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lean(dynamodb_endpoint)._inner is parents
