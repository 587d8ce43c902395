"""DynamoDB access shared by every store: one client per app, the table definitions of
SPEC §8, item (de)serialisation and the translation of condition failures."""
from __future__ import annotations

import logging
import os
import random
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    HTTPClientError,
    MetadataRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

# Item (de)serialisation lives in its own module; every store calls it as dynamo.to_item/from_item.
from common.config import is_local_dynamodb
from common.database.attribute_values import from_item as from_item
from common.database.attribute_values import to_item as to_item
from common.database.dynamo_client import LeanDynamoDBClient

log = logging.getLogger(__name__)

TTL_ATTRIBUTE = "expires_ttl"
LOCAL_KEY = "local"  # DynamoDB Local's credentials: it checks none


@dataclass(frozen=True)
class TableNames:
    users: str
    claims: str
    devices: str
    sessions: str
    presence: str
    pairing_tokens: str
    login_history: str
    one_time_tokens: str
    rate_limits: str
    key_ring: str
    apps: str
    security_events: str
    app_streams: str
    passkeys: str
    oidc_grants: str
    oidc_consents: str
    mail_outbox: str

    @classmethod
    def with_prefix(cls, prefix: str) -> "TableNames":
        return cls(**{name: prefix + name for name in cls.__dataclass_fields__})

    def all(self) -> list[str]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


DEVICES_BY_FINGERPRINT = "fingerprint-index"
# An operator finds a device's account by its id alone (SPEC §15): device ids are unique.
DEVICES_BY_ID = "device-index"
SESSIONS_BY_USER = "user-index"
# Active sessions by when they end without a write (sparse: only they carry `live_shard`).
SESSIONS_ENDING = "ending-index"
# Active screens' sessions (the device authorization grant) by their app (sparse: only they carry
# `live_screen_of`), so that removing an app ends its screens' sessions without a Scan.
SESSIONS_BY_SCREEN_APP = "screen-index"
# Account deletion (SPEC §4): the users being deleted (a sparse index: only they carry `deletion`),
# and each user's one-time tokens, pairing tokens and rate-limit items (sparse: only the items
# that belong to a user carry `user_uuid`), so that a deletion finds them without a Scan.
USERS_BEING_DELETED = "deletion-index"
ITEMS_BY_USER = "user-index"
# The mail outbox (common/mail/outbox_store.py): the mails waiting ("due") or given up ("undelivered") by when
# they are due (sparse: a sent mail carries no `queue`), so that a sender finds what is due without a Scan.
MAIL_QUEUE = "queue-index"


Attr = tuple[str, str]  # an attribute's name and its DynamoDB type
Index = tuple[str, Sequence[Attr], str]  # a global secondary index: its name, its key, its projection


def _key(*attrs: Attr) -> dict[str, Any]:
    kinds = ("HASH", "RANGE")
    return {
        "KeySchema": [{"AttributeName": a, "KeyType": k} for (a, _), k in zip(attrs, kinds, strict=False)],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in attrs],
    }


def _table(*key: Attr, indexes: Sequence[Index] = ()) -> dict[str, Any]:
    """CreateTable arguments for a table keyed by `key` (hash, then range) with `indexes`."""
    definition = _key(*key)
    if not indexes:
        return definition
    attrs = dict([*key, *(attr for _, index_key, _ in indexes for attr in index_key)])  # each once
    definition["AttributeDefinitions"] = [{"AttributeName": a, "AttributeType": t} for a, t in attrs.items()]
    definition["GlobalSecondaryIndexes"] = [
        {"IndexName": name, "KeySchema": _key(*index_key)["KeySchema"], "Projection": {"ProjectionType": projection}}
        for name, index_key, projection in indexes]
    return definition


def table_definitions(names: TableNames) -> dict[str, dict[str, Any]]:
    """CreateTable arguments for every table, keyed by table name."""
    user, by_user = ("user_uuid", "S"), (ITEMS_BY_USER, [("user_uuid", "S")], "KEYS_ONLY")
    return {
        names.users: _table(user, indexes=[
            (USERS_BEING_DELETED, [("deletion", "S"), ("deleting_since", "N")], "KEYS_ONLY")]),
        names.claims: _table(("claim", "S")),
        names.devices: _table(user, ("device_id", "S"), indexes=[
            (DEVICES_BY_FINGERPRINT, [("fingerprint", "S")], "KEYS_ONLY"),
            (DEVICES_BY_ID, [("device_id", "S")], "KEYS_ONLY")]),
        names.sessions: _table(("session_id", "S"), indexes=[
            (SESSIONS_BY_USER, [user, ("created_at", "S")], "ALL"),
            (SESSIONS_ENDING, [("live_shard", "S"), ("ends_at", "N")], "KEYS_ONLY"),
            (SESSIONS_BY_SCREEN_APP, [("live_screen_of", "S")], "KEYS_ONLY")]),
        names.presence: _table(user),
        names.pairing_tokens: _table(("token_digest", "S"), indexes=[by_user]),
        names.login_history: _table(user, ("event_key", "S")),
        names.one_time_tokens: _table(("token_digest", "S"), indexes=[by_user]),
        names.rate_limits: _table(("limit_key", "S"), indexes=[by_user]),
        # ring is always "main": the whole ring is one strongly consistent Query, never a Scan
        names.key_ring: _table(("ring", "S"), ("key_id", "S")),
        # registry is always "apps": listing the apps is one Query
        names.apps: _table(("registry", "S"), ("client_id", "S")),
        # the outbox of session ends (SPEC §11): feed is always "feed", seq = <epoch ms>-<event id>
        names.security_events: _table(("feed", "S"), ("seq", "S")),
        # each app's delivery state: what it acknowledged, and who pushes to it
        names.app_streams: _table(("client_id", "S")),
        # each user's passkeys (SPEC §13): credential_id is the base64url credential id
        names.passkeys: _table(user, ("credential_id", "S")),
        # which apps hold tokens of a session (SPEC §14): whom a Back-Channel Logout goes to
        names.oidc_grants: _table(("session_id", "S"), ("client_id", "S")),
        # what each person allowed each app added with --consent (SPEC §14): one Query lists a person's
        names.oidc_consents: _table(user, ("client_id", "S")),
        # the mail outbox (SPEC §7): one item per mail, until sent, given up or expired
        names.mail_outbox: _table(("mail_id", "S"), indexes=[
            (MAIL_QUEUE, [("queue", "S"), ("due_at", "N")], "ALL"), by_user]),
    }


def make_client(*, region: str, endpoint_url: str | None, local: bool | None = None, connect_timeout: float = 1.0,
                read_timeout: float = 2.0, max_attempts: int = 2, max_pool_connections: int = 64,
                parameter_validation: bool = True) -> Any:
    """One client per app, thread-safe: common/database/dynamo_client's lean client for the data plane
    (a third of boto3's CPU per call), over a regular boto3 client for everything else. A call that
    gets no answer gives up after about max_attempts * read_timeout seconds (the request's budget,
    not minutes). Behind an HTTP(S) proxy it is the plain boto3 client, which knows proxies.
    Credentials: a DynamoDB Local (`local`, or by default an endpoint on this machine, see
    common.config.is_local_dynamodb) takes a fixed local pair; any other endpoint, or none, the
    normal AWS credential chain of the process's boto3 session (environment, web identity, the ECS
    container endpoint, instance role ...), refreshed as botocore refreshes it."""
    config = BotoConfig(retries={"total_max_attempts": max_attempts, "mode": "standard"},
                        max_pool_connections=max_pool_connections, parameter_validation=parameter_validation,
                        connect_timeout=connect_timeout, read_timeout=read_timeout)
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    shared: tuple[Any, ...] | None = None
    if is_local_dynamodb(endpoint_url, local):
        credentials = Credentials(LOCAL_KEY, LOCAL_KEY)
        shared = (os.getpid(), session, region, endpoint_url, connect_timeout, read_timeout, max_attempts,
                  max_pool_connections, parameter_validation)
        client = _LOCAL_CLIENTS.get(shared)
        if client is None or _behind_proxy(client.meta.endpoint_url):  # (a proxy set since: a client that knows it)
            client = session.client("dynamodb", region_name=region, config=config, endpoint_url=endpoint_url,
                                    aws_access_key_id=LOCAL_KEY, aws_secret_access_key=LOCAL_KEY)
    else:
        credentials = session.get_credentials()
        client = session.client("dynamodb", region_name=region, config=config, endpoint_url=endpoint_url)
    if not _behind_proxy(client.meta.endpoint_url):
        if shared is not None:
            client = _LOCAL_CLIENTS.setdefault(shared, client)
        client = LeanDynamoDBClient(client, credentials=credentials, connect_timeout=connect_timeout,
                                    read_timeout=read_timeout, max_pool_connections=max_pool_connections,
                                    max_attempts=max_attempts, parameter_validation=parameter_validation,
                                    owns_inner=shared is None)
    retry_transaction_conflicts(client)
    return client


# The regular boto3 clients under the lean clients of a DynamoDB Local, one per process, session and
# configuration: a process that builds many apps (a test run: over a thousand) builds each once. Only the
# control-plane calls (CreateTable, DescribeTable ...) go through them, each lean client has its own events,
# and DynamoDB Local's credentials never change; a client behind a proxy is the regular client itself and never
# shared. Never across a fork: a gunicorn worker forked from a master that made one would share its
# connections with the master's other children, and their answers would mix.
_LOCAL_CLIENTS: dict[tuple[Any, ...], Any] = {}


def _behind_proxy(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return urlsplit(url).scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host)


# A write that met another transaction on one of its items is retried: nothing was written, and
# the retry sees the other's outcome (a claim taken is then a condition failure, a 409), so a
# person never gets a 503 for a race. Bounded, with full jitter so that racers spread out.
CONFLICT_ATTEMPTS = 8
CONFLICT_BASE_DELAY = 0.02
CONFLICT_MAX_DELAY = 0.25


def is_transaction_conflict(error_code_: str, reasons: Iterable[str]) -> bool:
    """A write refused only because another transaction holds an item: TransactionConflictException
    (a single-item write), or a cancelled transaction whose reasons are conflicts and no refusal."""
    if error_code_ == "TransactionConflictException":
        return True
    found = set(reasons) - {"None"}
    return error_code_ == "TransactionCanceledException" and bool(found) and found <= {"TransactionConflict"}


def _conflict_delay(*, response: Any = None, attempts: int = 0, **_: Any) -> float | None:
    """botocore's needs-retry hook: seconds to wait before retrying a conflicted write, else None
    (the standard retry handler decides as before)."""
    if response is None or attempts >= CONFLICT_ATTEMPTS:
        return None
    parsed = response[1]
    reasons = [r.get("Code", "None") for r in parsed.get("CancellationReasons") or []]
    if not is_transaction_conflict(parsed.get("Error", {}).get("Code", ""), reasons):
        return None
    return random.uniform(0, min(CONFLICT_MAX_DELAY, CONFLICT_BASE_DELAY * 2 ** attempts))


def retry_transaction_conflicts(client: Any) -> None:
    """Retry `client`'s writes that met a concurrent transaction (CONFLICT_ATTEMPTS in all), before
    botocore's own retries are asked; what still conflicts then is an outage (503)."""
    client.meta.events.register_first("needs-retry.dynamodb", _conflict_delay,
                                      unique_id="citylogin-transaction-conflicts")


def ensure_tables(client: Any, names: TableNames) -> list[str]:
    """Create the missing tables (idempotent, safe against a concurrent creator); return those created."""
    existing = set(_list_tables(client))
    created = []
    for name, definition in table_definitions(names).items():
        if name in existing:
            _add_missing_indexes(client, name, definition)
            continue
        try:
            client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **definition)
            created.append(name)
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
    for name in created:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        _enable_ttl(client, name)
    return created


def _add_missing_indexes(client: Any, name: str, definition: dict[str, Any]) -> None:
    """Add the secondary indexes a table made by an older version lacks (one UpdateTable each, as
    DynamoDB allows), e.g. account deletion's; the table stays usable while they build."""
    have = {i["IndexName"] for i in client.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])}
    for index in definition.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in have:
            continue
        keys = {k["AttributeName"] for k in index["KeySchema"]}
        log.info("adding index %s to %s", index["IndexName"], name)
        client.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Create": index}],
                            AttributeDefinitions=[a for a in definition["AttributeDefinitions"]
                                                  if a["AttributeName"] in keys])


def probe(client: Any, names: TableNames) -> None:
    """The cheap readiness read: one BatchGetItem of a key that never exists in every table, so a
    missing table shows (ResourceNotFoundException) without ListTables, which a least-privilege
    role lacks. Raises what the client raises."""
    client.batch_get_item(RequestItems={
        name: {"Keys": [{k["AttributeName"]: {"S": "readiness-probe"} for k in definition["KeySchema"]}]}
        for name, definition in table_definitions(names).items()})


def _list_tables(client: Any) -> Iterable[str]:
    for page in client.get_paginator("list_tables").paginate():
        yield from page["TableNames"]


def _enable_ttl(client: Any, name: str) -> None:
    try:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": TTL_ATTRIBUTE})
    except ClientError as exc:
        # Already enabled, or a backend without TTL: expiry is also checked on every read.
        log.info("TTL not enabled on %s: %s", name, error_code(exc))


class StoreRefusal(Exception):
    """The base of what a store refuses (a failed condition, a cursor it did not make): the service
    translates it into its ApiError; it never reaches a client as it is."""


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


# Why DynamoDB cannot serve a request now (a 503, never the request's fault): the error codes of
# each cause. Throttling and server errors pass; a refused signature or key is the deployment's
# credentials (or, with a Date far from ours after the client's own correction, the clock).
_CAUSES = {
    "throttling": {"ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
                   "RequestLimitExceeded", "PriorRequestNotComplete"},
    "contention": {"TransactionInProgressException", "TransactionConflictException"},
    "server error": {"InternalServerError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
                     "RequestTimeout", "RequestTimeoutException"},
    "credentials": {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException", "ExpiredToken",
                    "InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignatureException",
                    "MissingAuthenticationTokenException", "AccessDeniedException", "InvalidAccessKeyId"},
    "clock skew": {"RequestExpired", "RequestInTheFuture", "RequestTimeTooSkewed"},
}
_SIGNATURE_CODES = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch"})
_CAUSE_OF_CODE = {code: cause for cause, codes in _CAUSES.items() for code in codes}
UNAVAILABLE_CODES = frozenset(_CAUSE_OF_CODE)
# Per-item reasons of a cancelled transaction that are transient too.
_UNAVAILABLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict",
                                  "RequestLimitExceeded"})


def outage_cause(exc: BaseException) -> str | None:
    """What keeps DynamoDB from serving (TLS, connection, timeout, credentials, clock skew,
    throttling, contention, server error), or None when the error is the request's (or a bug)."""
    if isinstance(exc, SSLError):
        return "TLS"
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return "timeout"
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return "connection"  # refused, reset, no such host
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError,
                        MetadataRetrievalError)):
        return "credentials"  # none in the chain, or its source (container endpoint, STS) failed
    if not isinstance(exc, ClientError):
        return None
    code = error_code(exc)
    if code in _CAUSE_OF_CODE:
        cause = _CAUSE_OF_CODE[code]
        # A signature refused for its time ("Signature expired", "Signature not yet current"), not
        # for its key (ExpiredTokenException is stale credentials)
        timing = code in _SIGNATURE_CODES and any(word in _message(exc) for word in ("expired", "not yet current"))
        return "clock skew" if timing else cause
    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
        return "server error"  # a 5xx without DynamoDB's JSON (a load balancer's HTML or empty 503): code "503"
    reasons = set(cancellation_codes(exc)) - {"None"}
    if not reasons or not reasons <= _UNAVAILABLE_REASONS:
        return None
    return "contention" if reasons == {"TransactionConflict"} else "throttling"


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_unavailable(exc: BaseException) -> bool:
    """True for outages, timeouts, throttling and refused credentials (worth a 503 and a retry),
    False for anything else."""
    return outage_cause(exc) is not None


def is_condition_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def cancellation_codes(exc: ClientError) -> list[str]:
    """Per-item reasons of a cancelled TransactWriteItems ("None" for items that passed)."""
    if error_code(exc) != "TransactionCanceledException":
        return []
    reasons = exc.response.get("CancellationReasons") or []
    return [r.get("Code", "None") for r in reasons]


# --- batch writes (account deletion) -----------------------------------------------------

def delete_items_of_user(client: Any, table: str, *, key_name: str, user_uuid: str) -> int:
    """Delete every item of `table` that the sparse user index lists for `user_uuid` (account
    deletion); returns how many. The index is eventually consistent: a deletion's last pass
    comes back for any item written just before (SPEC §4)."""
    keys = query_keys(client, table, key_names=(key_name,), partition=("user_uuid", user_uuid), index=ITEMS_BY_USER)
    batch_write(client, table, [{"DeleteRequest": {"Key": k}} for k in keys])
    return len(keys)


BATCH_WRITE_LIMIT = 25  # requests per BatchWriteItem call


def batch_write(client: Any, table: str, requests: list[dict[str, Any]]) -> None:
    """Put/Delete `requests` on `table` in BatchWriteItem calls of 25, retrying unprocessed ones."""
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending = {table: requests[start:start + BATCH_WRITE_LIMIT]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def query_keys(client: Any, table: str, *, key_names: tuple[str, ...], partition: tuple[str, str],
               index: str | None = None) -> list[dict[str, Any]]:
    """The keys of every item in one partition (`partition` = (attribute, value)): a paged Query,
    strongly consistent on the table, eventually consistent on a secondary `index`, whose
    partition attribute then comes after the table's `key_names`."""
    names = {f"#k{i}": n for i, n in enumerate(key_names)}
    if index:
        names[f"#k{len(names)}"] = partition[0]
    condition = f"#k{len(names) - 1 if index else 0} = :p"
    keys, start = [], None
    while True:
        args: dict[str, Any] = {"TableName": table, "KeyConditionExpression": condition,
                                "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names,
                                "ExpressionAttributeValues": {":p": {"S": partition[1]}}}
        args.update({"IndexName": index} if index else {"ConsistentRead": True})
        if start:
            args["ExclusiveStartKey"] = start
        page = client.query(**args)
        keys += [{n: item[n] for n in key_names} for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return keys
