"""The device authorization grant's items (RFC 8628), in the one_time_tokens table beside the other
one-time items: a screen's request under the digest of its device_code, and the person's side of it under
the digest of its user code. Neither code is stored.

The request item is the screen's: its status (pending, approved, denied, redeemed), its poll interval and
the moment of its last poll, and once approved the session the approval opened. A poll is one UpdateItem
(the moment of this poll written, the item as it was answered): no read. The user-code item is the
person's: which request it stands for, and how often it was presented (RFC 8628 §5.1: tries capped). An
approval or a denial deletes it in the transaction that decides the request, so a used code is unknown."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo
from common.database.one_time_tokens import OneTimeTokenStore

DEVICE_KIND, USER_CODE_KIND = "oidc_device", "oidc_user_code"
PENDING, APPROVED, DENIED, REDEEMED = "pending", "approved", "denied", "redeemed"
SLOW_DOWN_STEP = 5  # seconds added to the interval by each slow_down (RFC 8628 §3.5)


class DeviceRequestDecided(dynamo.StoreRefusal):
    """The request was approved, denied or expired meanwhile (a parallel answer came first)."""

    def __init__(self) -> None:
        super().__init__("device request decided")


@dataclass(frozen=True)
class DeviceRequest:
    """A screen's request as stored (`digest`: its key). The approval's fields are set once approved."""

    digest: str
    client_id: str
    scope: str
    expires_epoch: int
    interval: int
    status: str
    last_poll_ms: int | None = None
    jkt: str | None = None
    user_uuid: str | None = None
    session_id: str | None = None
    device_id: str | None = None
    auth_time: int = 0
    amr: tuple[str, ...] = ()
    session_expires_epoch: int = 0
    approved_ms: int = 0


@dataclass(frozen=True)
class PresentedCode:
    """A user code's item, as its presentation found it."""

    digest: str
    device_digest: str
    client_id: str
    scope: str
    expires_epoch: int


class DeviceStore:
    def __init__(self, tokens: OneTimeTokenStore) -> None:
        self.tokens = tokens
        self.client, self.table = tokens.client, tokens.table

    def create_items(self, *, device_digest: str, user_code_digest: str, client_id: str, scope: str,
                     jkt: str | None, expires_epoch: int, interval: int, now: int) -> list[dict[str, Any]]:
        """TransactWriteItems entries keeping a new request and its user code; the user code's is refused
        while another live request holds the same code (drawn again), an expired one's is taken over."""
        request = {"token_digest": device_digest, "kind": DEVICE_KIND, "client_id": client_id, "scope": scope,
                   "expires_epoch": expires_epoch, dynamo.TTL_ATTRIBUTE: expires_epoch,
                   "poll_interval": interval, "status": PENDING, **({"jkt": jkt} if jkt else {})}
        code = {"token_digest": user_code_digest, "kind": USER_CODE_KIND, "device_digest": device_digest,
                "client_id": client_id, "scope": scope, "expires_epoch": expires_epoch,
                dynamo.TTL_ATTRIBUTE: expires_epoch, "tries": 0}
        return [{"Put": {"TableName": self.table, "Item": dynamo.to_item(request),
                         "ConditionExpression": "attribute_not_exists(token_digest)"}},
                {"Put": {"TableName": self.table, "Item": dynamo.to_item(code),
                         "ConditionExpression": "attribute_not_exists(token_digest) OR expires_epoch <= :now",
                         "ExpressionAttributeValues": {":now": {"N": str(now)}}}}]

    def polled(self, *, digest: str, client_id: str, now: int, now_ms: int) -> tuple[DeviceRequest | None, bool]:
        """Record a poll of `client_id`'s request: (the request as it was before this poll, True); or, when
        it is not `client_id`'s live request, (what there is under the digest, False): None for nothing."""
        try:
            answer = self.client.update_item(
                TableName=self.table, Key=OneTimeTokenStore.key(digest), UpdateExpression="SET last_poll_ms = :ms",
                ConditionExpression="attribute_exists(token_digest) AND #k = :k AND client_id = :c "
                                    "AND expires_epoch > :now",
                ExpressionAttributeNames={"#k": "kind"},
                ExpressionAttributeValues={":ms": {"N": str(now_ms)}, ":k": {"S": DEVICE_KIND},
                                           ":c": {"S": client_id}, ":now": {"N": str(now)}},
                ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
            found: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            return _request(digest, found), False
        return _request(digest, answer.get("Attributes")), True

    def slow_down(self, *, digest: str) -> None:
        """The request's interval grows by SLOW_DOWN_STEP, for every later poll on every host."""
        try:
            self.client.update_item(
                TableName=self.table, Key=OneTimeTokenStore.key(digest), UpdateExpression="ADD poll_interval :step",
                ConditionExpression="attribute_exists(token_digest)",
                ExpressionAttributeValues={":step": {"N": str(SLOW_DOWN_STEP)}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):  # gone meanwhile: its next poll says so
                raise

    def present(self, *, digest: str, now: int, max_tries: int) -> PresentedCode | None:
        """Count one presentation of a user code and give its item; None unless it is a live code
        presented fewer than `max_tries` times before."""
        try:
            answer = self.client.update_item(
                TableName=self.table, Key=OneTimeTokenStore.key(digest), UpdateExpression="ADD tries :one",
                ConditionExpression="attribute_exists(token_digest) AND #k = :k AND expires_epoch > :now "
                                    "AND tries < :max",
                ExpressionAttributeNames={"#k": "kind"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":k": {"S": USER_CODE_KIND}, ":now": {"N": str(now)},
                                           ":max": {"N": str(max_tries)}},
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        item = dynamo.from_item(answer["Attributes"])
        return PresentedCode(digest=digest, device_digest=str(item["device_digest"]), client_id=str(item["client_id"]),
                             scope=str(item.get("scope", "")), expires_epoch=int(item["expires_epoch"]))

    def decide_items(self, code: PresentedCode, *, now: int, approval: dict[str, Any] | None) -> list[dict[str, Any]]:
        """TransactWriteItems entries deciding a pending request: approved with `approval` (the session it
        opened), or denied (None); the user code is used up with it. Refused (the first entry) unless the
        request is still pending and live."""
        fields = {"status": APPROVED, **approval} if approval is not None else {"status": DENIED}
        names = {f"#f{n}": name for n, name in enumerate(fields)}
        values = {f":f{n}": value for n, value in enumerate(dynamo.to_item(fields).values())}
        values |= {":pending": {"S": PENDING}, ":now": {"N": str(now)}, ":k": {"S": DEVICE_KIND}}
        names |= {"#st": "status", "#k": "kind"}
        decided = {"Update": {
            "TableName": self.table, "Key": OneTimeTokenStore.key(code.device_digest),
            "UpdateExpression": "SET " + ", ".join(f"#f{n} = :f{n}" for n in range(len(fields))),
            "ConditionExpression": "#k = :k AND #st = :pending AND expires_epoch > :now",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}
        used = {"Delete": {"TableName": self.table, "Key": OneTimeTokenStore.key(code.digest),
                           "ConditionExpression": "attribute_exists(token_digest)"}}
        return [decided, used]

    def redeem_item(self, request: DeviceRequest) -> dict[str, Any]:
        """A TransactWriteItems entry spending an approved request (beside the grant it gives): of parallel
        polls of one approval, one commits."""
        assert request.session_id is not None
        return {"Update": {
            "TableName": self.table, "Key": OneTimeTokenStore.key(request.digest),
            "UpdateExpression": "SET #st = :redeemed",
            "ConditionExpression": "#st = :approved AND session_id = :sid",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":redeemed": {"S": REDEEMED}, ":approved": {"S": APPROVED},
                                          ":sid": {"S": request.session_id}}}}


def _request(digest: str, item: dict[str, Any] | None) -> DeviceRequest | None:
    if not item:
        return None
    data = dynamo.from_item(item)
    if data.get("kind") != DEVICE_KIND:
        return None
    return DeviceRequest(
        digest=digest, client_id=str(data["client_id"]), scope=str(data.get("scope", "")),
        expires_epoch=int(data["expires_epoch"]), interval=int(data["poll_interval"]), status=str(data["status"]),
        last_poll_ms=int(data["last_poll_ms"]) if "last_poll_ms" in data else None, jkt=data.get("jkt"),
        user_uuid=data.get("user_uuid"), session_id=data.get("session_id"), device_id=data.get("device_id"),
        auth_time=int(data.get("auth_time", 0)), amr=tuple(str(a) for a in data.get("amr") or ()),
        session_expires_epoch=int(data.get("session_expires_epoch", 0)), approved_ms=int(data.get("approved_ms", 0)))
