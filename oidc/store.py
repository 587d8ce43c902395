"""The OpenID Provider's items: authorization requests waiting for the person and issued codes (both
in the one_time_tokens table, keyed by a digest), and each app's grant on a session (oidc_grants)."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from common import dynamo
from common.one_time_tokens import OneTimeTokenStore
from oidc.models import Code, Grant

REQUEST_KIND, CODE_KIND = "oidc_request", "oidc_code"
# A grant is kept this long past its session's latest end: Back-Channel Logout retries for as long.
GRANT_KEPT_SECONDS = 24 * 3600


class CodeSpent(dynamo.StoreRefusal):
    """The code was redeemed before: `code` is what it was issued for (its grant is to be revoked)."""

    def __init__(self, code: Code) -> None:
        super().__init__("code used")
        self.code = code


class RequestStore:
    """Authorization requests between /oidc/authorize and the sign-in page's answer."""

    def __init__(self, tokens: OneTimeTokenStore) -> None:
        self.tokens = tokens

    def create(self, *, digest: str, params: dict[str, str], client_id: str, now: int, ttl: int) -> None:
        self.tokens.create(digest=digest, kind=REQUEST_KIND, expires_epoch=now + ttl,
                           data={"params": json.dumps(params), "client_id": client_id, "created_epoch": now})

    def get(self, *, digest: str, now: int) -> tuple[dict[str, str], int] | None:
        """(the request's parameters, when it was made), while it waits."""
        item = self.tokens.get(digest=digest, kind=REQUEST_KIND, now=now)
        return (json.loads(item["params"]), int(item["created_epoch"])) if item else None

    def finish(self, *, digest: str, now: int) -> bool:
        """Use the request up: of parallel answers to one request, one goes on."""
        return self.tokens.consume(digest=digest, kind=REQUEST_KIND, now=now) is not None


class CodeStore:
    """Codes, single-use by one conditional write; a used one is kept (until it expires) so that a
    replay can revoke what the first use issued (RFC 6749 §4.1.2)."""

    def __init__(self, tokens: OneTimeTokenStore) -> None:
        self.tokens = tokens

    def create(self, *, digest: str, code: Code, expires_epoch: int) -> None:
        self.tokens.create(digest=digest, kind=CODE_KIND, expires_epoch=expires_epoch,
                           data={k: v for k, v in asdict(code).items() if v is not None and k != "digest"})

    def redeem(self, *, digest: str, now: int) -> Code | None:
        """The code's record, marked used in the same write; None if there is no such live code;
        CodeSpent if it was used before."""
        try:
            item = self.tokens.client.update_item(
                TableName=self.tokens.table, Key=OneTimeTokenStore.key(digest), ReturnValues="ALL_NEW",
                UpdateExpression="SET used_epoch = :now",
                ConditionExpression="attribute_exists(token_digest) AND #k = :k AND expires_epoch > :now "
                                    "AND attribute_not_exists(used_epoch)",
                ExpressionAttributeNames={"#k": "kind"},
                ExpressionAttributeValues={":k": {"S": CODE_KIND}, ":now": {"N": str(now)}})["Attributes"]
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
            spent = self.tokens.get(digest=digest, kind=CODE_KIND, now=now)
            if spent is not None and "used_epoch" in spent:
                raise CodeSpent(_code(spent, digest)) from None
            return None
        return _code(dynamo.from_item(item), digest)

    def mark_replayed(self, *, digest: str, now: int) -> None:
        """A second use of the code: the first use's grant write, if it has not committed yet, is
        refused (unreplayed_check), so that the replay revokes it whichever of the two comes first."""
        try:
            self.tokens.client.update_item(TableName=self.tokens.table, Key=OneTimeTokenStore.key(digest),
                                           UpdateExpression="SET replayed_epoch = :now",
                                           ConditionExpression="attribute_exists(token_digest)",
                                           ExpressionAttributeValues={":now": {"N": str(now)}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise

    def unreplayed_check(self, *, digest: str) -> dict[str, Any]:
        """A TransactWriteItems entry refused once the code has been presented a second time."""
        return {"ConditionCheck": {"TableName": self.tokens.table, "Key": OneTimeTokenStore.key(digest),
                                   "ConditionExpression": "attribute_not_exists(replayed_epoch)"}}


def _code(data: dict[str, Any], digest: str) -> Code:
    return Code(**{k: v for k, v in data.items() if k in Code.__dataclass_fields__ and k != "digest"}, digest=digest)


class GrantStore:
    """Which apps hold tokens of which session (oidc_grants: session_id, client_id): whom to tell
    when the session ends (Back-Channel Logout), what `/oidc/revoke` or a replayed code ends, and the
    current generation of the app's rotating refresh token."""

    def __init__(self, client, table: str) -> None:
        self.client, self.table = client, table

    def _key(self, session_id: str, client_id: str) -> dict[str, Any]:
        return {"session_id": {"S": session_id}, "client_id": {"S": client_id}}

    def put_item(self, grant: Grant, *, now: int, expires_epoch: int) -> dict[str, Any]:
        """A TransactWriteItems entry recording the grant (with the session's liveness check beside it);
        it replaces the app's earlier grant on the session, and with it that one's refresh tokens."""
        item = {k: v for k, v in asdict(grant).items() if v is not None}
        item |= {"granted_epoch": now, "expires_epoch": expires_epoch,
                 dynamo.TTL_ATTRIBUTE: expires_epoch + GRANT_KEPT_SECONDS}
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(item)}}

    def get(self, *, session_id: str, client_id: str) -> Grant | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(session_id, client_id),
                                    ConsistentRead=True).get("Item")
        if item is None:
            return None
        data = dynamo.from_item(item)
        return Grant(**{k: v for k, v in data.items() if k in Grant.__dataclass_fields__})

    def rotate_item(self, grant: Grant, *, generation: int) -> dict[str, Any]:
        """A TransactWriteItems entry moving the grant's refresh token from `generation` to the next;
        refused if it moved on meanwhile, or the grant was replaced or removed."""
        return {"Update": {
            "TableName": self.table, "Key": self._key(grant.session_id, grant.client_id),
            "UpdateExpression": "SET refresh_gen = :next",
            "ConditionExpression": "refresh_gen = :gen AND grant_id = :grant",
            "ExpressionAttributeValues": {":next": {"N": str(generation + 1)}, ":gen": {"N": str(generation)},
                                          ":grant": {"S": grant.grant_id}}}}

    def clients_of(self, session_id: str) -> list[str]:
        page = self.client.query(TableName=self.table, KeyConditionExpression="session_id = :s",
                                 ExpressionAttributeValues={":s": {"S": session_id}}, ConsistentRead=True)
        return [item["client_id"]["S"] for item in page["Items"]]

    def delete(self, *, session_id: str, client_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(session_id, client_id))
