"""Remembered consent (SPEC §14): an app added with `--consent` asks the person once which scopes it
may use; the answer is kept per person and app (oidc_consents: user_uuid, client_id) so that the next
sign-in for the same or fewer scopes goes straight back to the app. The person sees and withdraws it on
the Account page; withdrawing also takes back what the app holds of their live sessions."""
from __future__ import annotations

from typing import Any, Callable

from relying_parties import service as apps
from common.errors import ErrorCode, NotFound
from common.timefmt import iso_from_epoch
from common.database import dynamo, item_listing
from common.database.guarded_write import GuardedWrite
from oidc.app_grants import ending as grants
from accounts.models import ConsentView
from sessions import service as sessions
from common.runtime.context import AppContext


class ConsentNotFound(NotFound):
    code, detail = ErrorCode.CONSENT_NOT_FOUND, "You have not allowed this app to use your account."


class ConsentStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    @staticmethod
    def key(user_uuid: str, client_id: str) -> dict[str, Any]:
        return {"user_uuid": {"S": user_uuid}, "client_id": {"S": client_id}}

    def scopes(self, *, user_uuid: str, client_id: str) -> frozenset[str] | None:
        """The scopes the person allowed the app, or None if they never did (or withdrew it)."""
        item = self.client.get_item(TableName=self.table, Key=self.key(user_uuid, client_id),
                                    ConsistentRead=True).get("Item")
        return None if item is None else frozenset(item.get("scopes", {}).get("SS", []))

    def remember(self, *, user_uuid: str, client_id: str, scopes: frozenset[str], now_ms: int) -> None:
        """Adds `scopes` to what the person allowed the app (one write: parallel answers add up); `given_ms`
        stays the moment of the first answer since the last withdrawal."""
        update = "SET granted_epoch = :now, given_ms = if_not_exists(given_ms, :ms)"
        values: dict[str, dict[str, Any]] = {":now": {"N": str(now_ms // 1000)}, ":ms": {"N": str(now_ms)}}
        if scopes:
            update, values[":s"] = update + " ADD scopes :s", {"SS": sorted(scopes)}
        self.client.update_item(TableName=self.table, Key=self.key(user_uuid, client_id),
                                UpdateExpression=update, ExpressionAttributeValues=values)

    def given_item(self, *, user_uuid: str, client_id: str, issued_ms: int) -> dict[str, Any]:
        """A TransactWriteItems entry refused unless the person's consent to the app, as it stands, was given
        by `issued_ms` (withdrawn since, or given again after a withdrawal, it was not). A consent from
        before given_ms was kept counts from its second."""
        return {"ConditionCheck": {
            "TableName": self.table, "Key": self.key(user_uuid, client_id),
            "ConditionExpression": "given_ms <= :issued OR (attribute_not_exists(given_ms) AND granted_epoch <= :s)",
            "ExpressionAttributeValues": {":issued": {"N": str(issued_ms)}, ":s": {"N": str(issued_ms // 1000)}}}}

    def of_user(self, user_uuid: str) -> list[dict[str, Any]]:
        items, start = [], None
        while True:
            args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "user_uuid = :u",
                                    "ExpressionAttributeValues": {":u": {"S": user_uuid}}, "ConsistentRead": True}
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            items += [dynamo.from_item(item) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def forget(self, *, user_uuid: str, client_id: str) -> bool:
        """Withdraws the consent; False if there was none."""
        answer = self.client.delete_item(TableName=self.table, Key=self.key(user_uuid, client_id),
                                         ReturnValues="ALL_OLD")
        return "Attributes" in answer

    def items(self, user_uuid: str) -> list[dict[str, Any]]:
        """Every consent of the user's, as stored (a person's data export)."""
        return item_listing.partition_items(self.client, self.table, partition=("user_uuid", user_uuid))

    def delete_all_of_user(self, user_uuid: str) -> int:
        keys = dynamo.query_keys(self.client, self.table, key_names=("user_uuid", "client_id"),
                                 partition=("user_uuid", user_uuid))
        dynamo.batch_write(self.client, self.table, [{"DeleteRequest": {"Key": k}} for k in keys])
        return len(keys)


def _store(ctx: AppContext) -> ConsentStore:
    return ConsentStore(ctx.dynamodb, ctx.tables.oidc_consents)


def needs_asking(ctx: AppContext, *, user_uuid: str, client_id: str, scopes: frozenset[str]) -> bool:
    """Whether the person must be asked: they never allowed this app these scopes (all of them)."""
    allowed = _store(ctx).scopes(user_uuid=user_uuid, client_id=client_id)
    return allowed is None or not scopes <= allowed


def remember(ctx: AppContext, *, user_uuid: str, client_id: str, scopes: frozenset[str]) -> None:
    _store(ctx).remember(user_uuid=user_uuid, client_id=client_id, scopes=scopes,
                         now_ms=ctx.epoch_ms())


def still_given(ctx: AppContext, *, user_uuid: str, client_id: str, issued_ms: int,
                refusal: Callable[[], Exception]) -> GuardedWrite:
    """A check, for a code's redemption, that the person's consent to the app was not withdrawn since the
    code was given at `issued_ms` (SPEC §14)."""
    return GuardedWrite(item=_store(ctx).given_item(user_uuid=user_uuid, client_id=client_id, issued_ms=issued_ms),
                        refusal=refusal)


def list_consents(ctx: AppContext, *, user_uuid: str) -> list[ConsentView]:
    """The apps the person allowed, by name (an app removed since shows by its client_id)."""
    names = {app.client_id: app.name for app in apps.list_apps(ctx)}
    return [ConsentView(client_id=item["client_id"], client_name=names.get(item["client_id"], item["client_id"]),
                        scopes=sorted(item.get("scopes", [])),
                        granted_at=iso_from_epoch(int(item["granted_epoch"])))
            for item in _store(ctx).of_user(user_uuid)]


def withdraw(ctx: AppContext, *, user_uuid: str, client_id: str) -> None:
    """The person takes their consent back: the app asks again next time, and what it holds of the
    person's live sessions (its refresh token, its access tokens at userinfo) stops working now; the
    app is told by Back-Channel Logout for each of them (oidc.app_grants.ending). The consent goes first: from then on
    no code gives the app a grant (oidc.token.redemption); a withdrawal cut short after it is finished by the
    person's retry, which ends the grants left."""
    forgotten = _store(ctx).forget(user_uuid=user_uuid, client_id=client_id)
    ended = [grants.end_grant(ctx, session_id=entry.session_id, client_id=client_id, reason=grants.CONSENT_WITHDRAWN)
             for entry in sessions.live_devices(ctx, user_uuid=user_uuid)]
    if not (forgotten or any(ended)):
        raise ConsentNotFound()


def forget_all(ctx: AppContext, *, user_uuid: str) -> int:
    """Account deletion: every consent of the person goes."""
    return _store(ctx).delete_all_of_user(user_uuid)
