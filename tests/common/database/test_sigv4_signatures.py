"""The lean DynamoDB client's hand-written SigV4 (common/database/dynamo_client.py, `_Signer`) is botocore's.

Until these tests it had only ever talked to DynamoDB Local, which accepts any signature. So:
- byte for byte: each data-plane operation's request is caught as it leaves the socket and its
  `Authorization`, `X-Amz-Date`, `X-Amz-Security-Token` and `Host` must be the strings botocore's
  SigV4Auth gives the same method, URL and body at the same instant (botocore's clock frozen), with
  unicode names and values, binary attributes and a ~350 KB item, on an endpoint with its own port,
  one on https's default port and one written in capitals, in three regions; and each body must be
  the JSON a boto3 client sends for the same parameters, so that what is signed is what botocore
  would send;
- against a server that checks: moto in server mode with its IAM authentication on runs every
  data-plane operation for an IAM user's key and for an assumed role's session credentials, and
  refuses a wrong secret, an unknown key and a wrong session token.
"""
from __future__ import annotations

import copy
import datetime
import json
import os
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import botocore.auth
import pytest
from botocore import xform_name
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from common.database import dynamo
from common.database.dynamo_client import DATA_PLANE, LeanDynamoDBClient, _Signer
from tests.support.moto_server import read_moto_refusals, running_moto
from tests.support.tcp_faults import _Listener
from tests.support.tls import new_authority, server_certificate, write_cert, write_key

# 2025-12-31T23:59:59.75Z: a signer that rounded instead of truncating would date it next year.
INSTANT = 1767225599.75
STAMP = "20251231T235959Z"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+/abc=="
CREDENTIALS = {
    "session-token": Credentials("ASIAEXAMPLEEXAMPLE01", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", TOKEN),
    "no-token": Credentials("AKIAEXAMPLEEXAMPLE01", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),
    # SigV4 signs a header's value trimmed, with its runs of spaces made one (botocore's _header_value)
    "token-with-runs-of-spaces": Credentials("ASIAEXAMPLEEXAMPLE02", "secret", "Fwo  token   with runs "),
}
TABLE = "signatures"
BINARY = bytes(range(256))  # 0x00 to 0xff
UNICODE = "こんにちは 😀👩‍👩‍👧 Ame\u0301lie ñ"  # Japanese, emoji, a ZWJ sequence, a combining accent
KEY = {"pk": {"S": "ユーザー😀e\u0301"}, "sk": {"S": "キー"}}
ITEM = {**KEY, "名前": {"S": UNICODE}, "😀": {"SS": ["🍣", "e\u0301"]}, "e\u0301": {"N": "1"},
        "sealed": {"B": BINARY}, "sealed_set": {"BS": [b"\x00", b"\xff", BINARY]},
        "map": {"M": {"ключ": {"S": "значение"}, "B": {"S": "a map key named B"}}},
        "list": {"L": [{"B": b"\x00\xff"}, {"S": "🧪"}]}}
BIG_KEY = {"pk": {"S": "大きい"}, "sk": {"S": "😀"}}
# 230 400 bytes of binary and 125 000 bytes of UTF-8 text: ~350 KB of a 400 KB item limit
BIG_ITEM = {**BIG_KEY, "sealed": {"B": BINARY * 900}, "text": {"S": "日本語テキスト😀" * 5000}}
OTHER_KEY = {"pk": {"S": "二"}, "sk": {"S": "e\u0301"}}
NAMES = {"#n": "名前", "#e": "😀", "#c": "e\u0301", "#b": "sealed", "#s": "sealed_set"}


def calls(table: str) -> dict[str, dict[str, Any]]:
    """Parameters for each data-plane operation, in an order that succeeds on an empty table."""
    return {
        "PutItem": {"TableName": table, "Item": ITEM},
        "GetItem": {"TableName": table, "Key": KEY, "ConsistentRead": True, "ProjectionExpression": "#n, #e, #b",
                    "ExpressionAttributeNames": {k: NAMES[k] for k in ("#n", "#e", "#b")}},
        "UpdateItem": {"TableName": table, "Key": KEY, "UpdateExpression": "SET #n = :v, #b = :b ADD #s :s",
                       "ExpressionAttributeNames": {k: NAMES[k] for k in ("#n", "#b", "#s")},
                       "ExpressionAttributeValues": {":v": {"S": UNICODE + "!"}, ":b": {"B": BINARY[::-1]},
                                                     ":s": {"BS": [b"\x00\xff"]}},
                       "ReturnValues": "ALL_NEW"},
        "Query": {"TableName": table, "KeyConditionExpression": "pk = :p", "FilterExpression": "contains(#s, :x)",
                  "ExpressionAttributeNames": {"#s": "sealed_set"},
                  "ExpressionAttributeValues": {":p": KEY["pk"], ":x": {"B": b"\x00\xff"}}, "ConsistentRead": True},
        "Scan": {"TableName": table, "FilterExpression": "#n = :v", "ExpressionAttributeNames": {"#n": "名前"},
                 "ExpressionAttributeValues": {":v": {"S": UNICODE + "!"}}, "ConsistentRead": True},
        "BatchWriteItem": {"RequestItems": {table: [{"PutRequest": {"Item": {**ITEM, **OTHER_KEY}}},
                                                    {"PutRequest": {"Item": BIG_ITEM}}]}},
        "BatchGetItem": {"RequestItems": {table: {"Keys": [KEY, OTHER_KEY], "ConsistentRead": True}}},
        "TransactWriteItems": {"TransactItems": [
            {"Put": {"TableName": table, "Item": {**ITEM, "pk": {"S": "三"}}}},
            {"Update": {"TableName": table, "Key": OTHER_KEY, "UpdateExpression": "SET #c = :c",
                        "ExpressionAttributeNames": {"#c": "e\u0301"},
                        "ExpressionAttributeValues": {":c": {"N": "2"}}}}],
            "ClientRequestToken": "signature-test-token"},
        "TransactGetItems": {"TransactItems": [{"Get": {"TableName": table, "Key": OTHER_KEY}},
                                               {"Get": {"TableName": table, "Key": BIG_KEY}}]},
        "DeleteItem": {"TableName": table, "Key": KEY, "ConditionExpression": "#b = :b",
                       "ExpressionAttributeNames": {"#b": "sealed"},
                       "ExpressionAttributeValues": {":b": {"B": BINARY[::-1]}},
                       "ReturnValues": "ALL_OLD"},
    }


def test_every_data_plane_operation_is_covered():
    assert sorted(calls(TABLE)) == sorted(DATA_PLANE)


# --- byte for byte against botocore's signer -------------------------------------------------

@dataclass(frozen=True)
class WireRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names, values exactly as sent
    body: bytes


class RecordingDynamoDB(_Listener):
    """Keeps each request as it came off the socket (over TLS with `tls`) and answers
    `HTTP/1.1 200 OK` with `{}` on the same keep-alive connection."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests: list[WireRequest] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with self.tls.wrap_socket(conn, server_side=True) if self.tls else conn as stream:
                buffer = b""
                while True:
                    while b"\r\n\r\n" not in buffer:
                        if not (chunk := stream.recv(65536)):
                            return
                        buffer += chunk
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    request_line, *lines = head.decode("latin-1").split("\r\n")
                    headers = dict((name.lower(), value) for name, value in (line.split(": ", 1) for line in lines))
                    assert len(headers) == len(lines), f"a header sent twice: {lines}"
                    length = int(headers["content-length"])
                    while len(buffer) < length:
                        buffer += stream.recv(65536)
                    method, path, _ = request_line.split(" ")
                    self.requests.append(WireRequest(method, path, headers, buffer[:length]))
                    buffer = buffer[length:]
                    stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                                   b"Content-Length: 2\r\n\r\n{}")
        except OSError:
            return  # the listener closed it


@dataclass(frozen=True)
class Endpoint:
    url: str
    region: str
    host: str  # the Host header botocore derives from the URL
    server: RecordingDynamoDB


@pytest.fixture(params=["own-port", "https-default-port", "host-in-capitals"])
def endpoint(request, monkeypatch, tmp_path: Path) -> Iterator[Endpoint]:
    """http://127.0.0.1:<port> in eu-west-1; https://localhost:443 in ap-northeast-1 (the Host
    without its port; the connection is taken to the recorder's port, over TLS with a throwaway
    CA); http://LocalHost:<port> in us-east-1 (botocore signs the host in lower case)."""
    if request.param == "https-default-port":
        authority = new_authority("signature test CA")
        cert, key = server_certificate(authority)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(write_cert(tmp_path / "server.pem", cert), write_key(tmp_path / "server.key", key))
        monkeypatch.setenv("AWS_CA_BUNDLE", str(write_cert(tmp_path / "ca.pem", authority.cert)))
        with RecordingDynamoDB(tls) as server:
            connect = socket.create_connection

            def to_recorder(address, *args, **kwargs):
                recorder = ("127.0.0.1", server.port)
                return connect(recorder if address == ("localhost", 443) else address, *args, **kwargs)

            monkeypatch.setattr(socket, "create_connection", to_recorder)
            yield Endpoint("https://localhost:443", "ap-northeast-1", "localhost", server)
        return
    with RecordingDynamoDB() as server:
        if request.param == "own-port":
            yield Endpoint(server.url, "eu-west-1", f"127.0.0.1:{server.port}", server)
        else:
            yield Endpoint(f"http://LocalHost:{server.port}", "us-east-1", f"localhost:{server.port}", server)


def lean_client(url: str, region: str, credentials: Credentials, clock: Callable[[], float]) -> LeanDynamoDBClient:
    inner = boto3.client("dynamodb", region_name=region, endpoint_url=url,
                         aws_access_key_id="unused", aws_secret_access_key="unused")
    return LeanDynamoDBClient(inner, credentials=credentials, connect_timeout=2, read_timeout=5,
                              max_pool_connections=2, max_attempts=1, parameter_validation=True, clock=clock)


def frozen_botocore_clock(monkeypatch, instant: float) -> None:
    """botocore's SigV4Auth.add_auth dates a signature by botocore.auth.get_current_datetime()."""
    frozen = datetime.datetime.fromtimestamp(instant, datetime.timezone.utc).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: frozen)


def signed_by_botocore(url: str, region: str, credentials: Credentials, *, method: str, path: str,
                       content_type: str, target: str, body: bytes) -> tuple[dict[str, str], str]:
    """The headers botocore's SigV4Auth adds to this request (Authorization, X-Amz-Date and the
    session token are its own, the host is the one it derives from the URL), and that host."""
    request = AWSRequest(method=method, url=url + path, data=body,
                         headers={"Content-Type": content_type, "X-Amz-Target": target})
    signer = SigV4Auth(credentials, "dynamodb", region)
    signer.add_auth(request)
    return dict(request.headers), signer.headers_to_sign(request)["host"]


@pytest.mark.parametrize("credentials", CREDENTIALS.values(), ids=CREDENTIALS.keys())
def test_every_operation_is_signed_as_botocore_signs_it(endpoint, credentials, monkeypatch):
    frozen_botocore_clock(monkeypatch, INSTANT)
    client = lean_client(endpoint.url, endpoint.region, credentials, clock=lambda: INSTANT)
    try:
        for name, params in calls(TABLE).items():
            getattr(client, xform_name(name))(**copy.deepcopy(params))
    finally:
        client.close()
    assert len(endpoint.server.requests) == len(DATA_PLANE)
    for name, wire in zip(calls(TABLE), endpoint.server.requests, strict=True):
        assert (wire.headers["x-amz-target"], wire.method, wire.path) == (f"DynamoDB_20120810.{name}", "POST", "/")
        expected, host = signed_by_botocore(endpoint.url, endpoint.region, credentials, method=wire.method,
                                            path=wire.path, content_type=wire.headers["content-type"],
                                            target=wire.headers["x-amz-target"], body=wire.body)
        assert wire.headers["authorization"] == expected["Authorization"], name
        assert wire.headers["x-amz-date"] == expected["X-Amz-Date"] == STAMP, name
        assert wire.headers.get("x-amz-security-token") == expected.get("X-Amz-Security-Token"), name
        assert wire.headers["host"] == host == endpoint.host, name
    assert max(len(wire.body) for wire in endpoint.server.requests) > 350_000  # the big item went out whole


class _Canned:
    """The raw body of the answer a before-send hook gives instead of sending."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b"{}"


def sent_by_boto3(client: Any, name: str, params: dict[str, Any]) -> Any:
    """The request a boto3 client would put on the wire, caught at `before-send` (nothing is sent)."""
    caught = []

    def catch(request: Any, **_: Any) -> AWSResponse:
        caught.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _Canned())

    client.meta.events.register(f"before-send.dynamodb.{name}", catch, unique_id="catch")
    try:
        getattr(client, xform_name(name))(**copy.deepcopy(params))
    finally:
        client.meta.events.unregister(f"before-send.dynamodb.{name}", unique_id="catch")
    (request,) = caught
    return request


def test_every_body_is_the_json_boto3_sends():
    """What the lean client signs is what botocore would send: the same JSON (binary as base64,
    unicode as is), the same target, content type, method and path."""
    credentials = CREDENTIALS["session-token"]
    with RecordingDynamoDB() as server:
        client = lean_client(server.url, "eu-west-1", credentials, clock=lambda: INSTANT)
        plain = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=server.url,
                             aws_access_key_id=credentials.access_key, aws_secret_access_key=credentials.secret_key,
                             aws_session_token=credentials.token)
        try:
            for name, params in calls(TABLE).items():
                getattr(client, xform_name(name))(**copy.deepcopy(params))
                boto3_request = sent_by_boto3(plain, name, params)
                wire = server.requests[-1]
                assert json.loads(wire.body) == json.loads(boto3_request.body), name
                assert (wire.method, server.url + wire.path) == (boto3_request.method, boto3_request.url), name
                for header in ("Content-Type", "X-Amz-Target"):
                    value = boto3_request.headers[header]  # botocore's prepared headers may be bytes
                    assert wire.headers[header.lower()] == (value.decode() if isinstance(value, bytes) else value), name
        finally:
            client.close()


@pytest.mark.parametrize("instant, stamp", [(4102444799.5, "20991231T235959Z"), (946684800.0, "20000101T000000Z")],
                         ids=["far-future", "far-past"])
def test_the_signer_dates_each_signature_by_its_clock_however_far_off(instant, stamp, monkeypatch):
    credentials = CREDENTIALS["session-token"]
    signer = _Signer(credentials, "eu-west-1", "dynamodb.eu-west-1.amazonaws.com", clock=lambda: instant)
    headers = signer.headers("DynamoDB_20120810.GetItem", b"{}")
    assert headers["X-Amz-Date"] == stamp
    scope = f"{stamp[:8]}/eu-west-1/dynamodb/aws4_request"
    assert f"Credential={credentials.access_key}/{scope}" in headers["Authorization"]
    frozen_botocore_clock(monkeypatch, instant)
    expected, _ = signed_by_botocore("https://dynamodb.eu-west-1.amazonaws.com", "eu-west-1", credentials,
                                     method="POST", path="/", content_type=headers["Content-Type"],
                                     target=headers["X-Amz-Target"], body=b"{}")
    assert headers["Authorization"] == expected["Authorization"]
    # the offset the clock-skew correction sets: from then on the signer dates by the server's clock
    signer.set_time(INSTANT)
    assert signer.headers("DynamoDB_20120810.GetItem", b"{}")["X-Amz-Date"] == STAMP


# --- against a server that checks signatures: moto with its IAM authentication on ------------

ALLOW_DYNAMODB = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]})
TRUST_ANYONE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
SET_UP_CALLS = 6  # CreateUser, PutUserPolicy, CreateAccessKey, CreateRole, PutRolePolicy, AssumeRole


@dataclass(frozen=True)
class Moto:
    url: str
    user_key: tuple[str, str]           # an IAM user's access key id and secret, allowed dynamodb:*
    role_session: tuple[str, str, str]  # an assumed role's key id, secret and session token, allowed dynamodb:*


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    """One moto for the module, set up with its unauthenticated calls; every later call is checked."""
    with running_moto(unauthenticated_calls=SET_UP_CALLS) as url:
        setup = {"endpoint_url": url, "region_name": "us-east-1",
                 "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam, sts = boto3.client("iam", **setup), boto3.client("sts", **setup)
        iam.create_user(UserName="citylogin")
        iam.put_user_policy(UserName="citylogin", PolicyName="dynamodb", PolicyDocument=ALLOW_DYNAMODB)
        key = iam.create_access_key(UserName="citylogin")["AccessKey"]
        role = iam.create_role(RoleName="citylogin", AssumeRolePolicyDocument=TRUST_ANYONE)["Role"]
        iam.put_role_policy(RoleName="citylogin", PolicyName="dynamodb", PolicyDocument=ALLOW_DYNAMODB)
        session = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="citylogin-test")["Credentials"]
        yield Moto(url, (key["AccessKeyId"], key["SecretAccessKey"]),
                   (session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]))


@pytest.fixture
def client_from_environment(moto, monkeypatch, tmp_path) -> Iterator[Callable[..., LeanDynamoDBClient]]:
    """make_client(local=False) on moto with these credentials in the environment, and no other
    source of credentials (no ~/.aws files, no profile, no instance metadata) to interfere."""
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    made: list[LeanDynamoDBClient] = []

    def make(access_key: str, secret: str, token: str | None = None) -> LeanDynamoDBClient:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        if token is None:
            monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        else:
            monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # make_client's session reads the environment anew
        client = dynamo.make_client(region="us-east-1", endpoint_url=moto.url, local=False, max_attempts=1)
        assert isinstance(client, LeanDynamoDBClient)
        read_moto_refusals(client)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def new_table(client: Any) -> str:
    """A table made through the client's inner boto3 client (control plane): botocore's signature."""
    name = f"signed-{uuid.uuid4().hex[:10]}"
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])
    return name


def sets_sorted(item: dict[str, Any]) -> dict[str, Any]:
    """An item with its string and binary sets in order (a set's order is the server's)."""
    return {name: {kind: sorted(v) if kind in ("SS", "BS") else v for kind, v in value.items()}
            for name, value in item.items()}


def altered(secret: str) -> str:
    """`secret` with its last character changed."""
    return secret[:-1] + ("A" if secret[-1] != "A" else "B")


def run_every_operation(client: Any, table: str) -> None:
    """Each data-plane operation, accepted, with what it reads back checked."""
    for name, params in calls(table).items():
        answer = getattr(client, xform_name(name))(**copy.deepcopy(params))
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200, name
        if name == "GetItem":
            assert sets_sorted(answer["Item"]) == sets_sorted({k: ITEM[k] for k in ("名前", "😀", "sealed")})
        elif name == "UpdateItem":
            assert answer["Attributes"]["sealed"] == {"B": BINARY[::-1]}
            assert answer["Attributes"]["名前"] == {"S": UNICODE + "!"}
        elif name in ("Query", "Scan"):
            assert [item["pk"] for item in answer["Items"]] == [KEY["pk"]], name
        elif name == "BatchGetItem":
            assert sorted(item["pk"]["S"] for item in answer["Responses"][table]) == sorted(
                [KEY["pk"]["S"], OTHER_KEY["pk"]["S"]])
        elif name == "TransactGetItems":
            assert answer["Responses"][0]["Item"]["e\u0301"] == {"N": "2"}
            assert answer["Responses"][1]["Item"] == BIG_ITEM  # the ~350 KB item, whole
        elif name == "DeleteItem":
            assert sorted(answer["Attributes"]["sealed_set"]["BS"]) == sorted([b"\x00", b"\xff", BINARY, b"\x00\xff"])
    assert "Item" not in client.get_item(TableName=table, Key=KEY, ConsistentRead=True)


def test_every_operation_is_accepted_for_an_iam_users_key(moto, client_from_environment):
    client = client_from_environment(*moto.user_key)
    run_every_operation(client, new_table(client))


def test_every_operation_is_accepted_for_an_assumed_roles_session_credentials(moto, client_from_environment):
    client = client_from_environment(*moto.role_session)
    run_every_operation(client, new_table(client))


def refusal(client: Any, table: str) -> ClientError:
    """The error of a GetItem moto refuses: a 403 that citylogin takes for an outage of its credentials."""
    with pytest.raises(ClientError) as refused:
        client.get_item(TableName=table, Key=KEY)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert dynamo.outage_cause(refused.value) == "credentials"
    return refused.value


def test_a_wrong_secret_is_refused(moto, client_from_environment):
    access_key, secret = moto.user_key
    right = client_from_environment(access_key, secret)
    table = new_table(right)
    right.put_item(TableName=table, Item=ITEM)  # the same key with its secret passes
    wrong = client_from_environment(access_key, altered(secret))
    refused = refusal(wrong, table)
    assert dynamo.error_code(refused) == "SignatureDoesNotMatch"
    assert refused.response["Error"]["Message"].startswith("The request signature we calculated does not match")


def test_an_unknown_access_key_is_refused(moto, client_from_environment):
    right = client_from_environment(*moto.user_key)
    table = new_table(right)
    right.put_item(TableName=table, Item=ITEM)  # a known key passes
    refused = refusal(client_from_environment("AKIA" + uuid.uuid4().hex[:16].upper(), moto.user_key[1]), table)
    assert dynamo.error_code(refused) == "InvalidClientTokenId"
    assert refused.response["Error"]["Message"] == "The security token included in the request is invalid."


def test_a_wrong_session_token_is_refused(moto, client_from_environment):
    access_key, secret, token = moto.role_session
    right = client_from_environment(access_key, secret, token)
    table = new_table(right)
    right.put_item(TableName=table, Item=ITEM)  # the token STS issued passes
    refused = refusal(client_from_environment(access_key, secret, altered(token)), table)
    assert dynamo.error_code(refused) == "InvalidClientTokenId"
