"""The sessions table and the presence table: one session per login, one presence record per
user listing its logged-in devices under a version number (SPEC §5, §8)."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from common import dynamo
from session_manager.models import SESSION_ACTIVE, SESSION_REVOKED, Presence, PresenceEntry, SessionRecord


class PresenceChanged(Exception):
    """Another request changed the user's presence first; re-read and decide again."""


class ExtraWriteRefused(Exception):
    """A caller's extra transaction entry failed its condition; `.index` counts from 0."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _record(cls, data: dict[str, Any]):
    return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class SessionStore:
    def __init__(self, client, *, sessions_table: str, presence_table: str) -> None:
        self.client, self.sessions, self.presence = client, sessions_table, presence_table

    # --- reads ---------------------------------------------------------------------------

    def get(self, session_id: str) -> SessionRecord | None:
        item = self.client.get_item(TableName=self.sessions, Key={"session_id": {"S": session_id}},
                                    ConsistentRead=True).get("Item")
        return _record(SessionRecord, dynamo.from_item(item)) if item else None

    def batch_states(self, session_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The liveness fields of up to 100 sessions in one strongly consistent BatchGetItem
        (plus retries of unprocessed keys)."""
        request = {self.sessions: {
            "Keys": [{"session_id": {"S": sid}} for sid in session_ids], "ConsistentRead": True,
            "ProjectionExpression": "session_id, #s, revoked_reason, by_device, expires_epoch, last_seen_epoch",
            "ExpressionAttributeNames": {"#s": "status"}}}
        states: dict[str, dict[str, Any]] = {}
        while request:
            response = self.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.sessions, []):
                state = dynamo.from_item(item)
                states[state["session_id"]] = state
            request = response.get("UnprocessedKeys") or {}
        return states

    def get_presence(self, user_uuid: str) -> Presence:
        item = self.client.get_item(TableName=self.presence, Key={"user_uuid": {"S": user_uuid}},
                                    ConsistentRead=True).get("Item")
        if not item:
            return Presence(user_uuid=user_uuid)
        data = dynamo.from_item(item)
        entries = {device: _record(PresenceEntry, entry) for device, entry in data.get("entries", {}).items()}
        return Presence(user_uuid=user_uuid, version=data["version"], entries=entries)

    def list_for_user(self, user_uuid: str) -> list[SessionRecord]:
        """The user's sessions, newest first, from the user index (eventually consistent)."""
        records, start = [], None
        while True:
            args: dict[str, Any] = {
                "TableName": self.sessions, "IndexName": dynamo.SESSIONS_BY_USER, "ScanIndexForward": False,
                "KeyConditionExpression": "#u = :u", "ExpressionAttributeNames": {"#u": "user_uuid"},
                "ExpressionAttributeValues": {":u": {"S": user_uuid}}}
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            records += [_record(SessionRecord, dynamo.from_item(i)) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return records

    # --- the invariant: membership changes only through a versioned presence write ---------

    def _presence_put(self, before: Presence, entries: dict[str, PresenceEntry]) -> dict[str, Any]:
        item = {"user_uuid": before.user_uuid, "version": before.version + 1,
                "entries": {device: asdict(entry) for device, entry in entries.items()}}
        condition = "attribute_not_exists(user_uuid)" if before.version == 0 else "#v = :v"
        put: dict[str, Any] = {"TableName": self.presence, "Item": dynamo.to_item(item),
                               "ConditionExpression": condition}
        if before.version:
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":v": {"N": str(before.version)}}
        return {"Put": put}

    def _revoke_update(self, session_id: str, *, reason: str, at: str, by_device: str | None) -> dict[str, Any]:
        values = {":revoked": {"S": SESSION_REVOKED}, ":reason": {"S": reason}, ":at": {"S": at}}
        expression = "SET #s = :revoked, revoked_reason = :reason, revoked_at = :at"
        if by_device:
            expression += ", by_device = :by"
            values[":by"] = {"S": by_device}
        return {"Update": {"TableName": self.sessions, "Key": {"session_id": {"S": session_id}},
                           "UpdateExpression": expression, "ExpressionAttributeNames": {"#s": "status"},
                           "ExpressionAttributeValues": values}}

    def open_session(self, *, before: Presence, entries: dict[str, PresenceEntry], session: SessionRecord,
                     displaced: list[tuple[str, str]], at: str, by_device: str,
                     extra_writes: list[dict[str, Any]]) -> None:
        """Replace the presence (if unchanged since read), create `session`, revoke `displaced`
        [(session_id, reason)], and `extra_writes`: all in one transaction."""
        items = [self._presence_put(before, entries),
                 {"Put": {"TableName": self.sessions, "Item": dynamo.to_item(asdict(session)),
                          "ConditionExpression": "attribute_not_exists(session_id)"}},
                 *[self._revoke_update(sid, reason=reason, at=at, by_device=by_device) for sid, reason in displaced],
                 *extra_writes]
        try:
            self._transact(items)
        except ExtraWriteRefused as refused:
            raise ExtraWriteRefused(refused.index - (len(items) - len(extra_writes))) from None

    def _transact(self, items: list[dict[str, Any]]) -> None:
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if codes and codes[0] in ("ConditionalCheckFailed", "TransactionConflict"):
                raise PresenceChanged() from None
            if dynamo.error_code(exc) == "TransactionConflictException" or "TransactionConflict" in codes:
                raise PresenceChanged() from None
            if "ConditionalCheckFailed" in codes:
                raise ExtraWriteRefused(codes.index("ConditionalCheckFailed")) from None
            raise

    def revoke(self, session: SessionRecord, *, reason: str, at: str, by_device: str | None) -> None:
        """Mark `session` revoked and take its device out of the presence record, atomically."""
        remove = {"Update": {
            "TableName": self.presence, "Key": {"user_uuid": {"S": session.user_uuid}},
            "UpdateExpression": "REMOVE entries.#d SET #v = #v + :one",
            "ConditionExpression": "entries.#d.session_id = :sid",
            "ExpressionAttributeNames": {"#d": session.device_id, "#v": "version"},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":sid": {"S": session.session_id}}}}
        try:
            self._transact([remove, self._revoke_update(session.session_id, reason=reason, at=at,
                                                         by_device=by_device)])
        except PresenceChanged:
            # The presence no longer lists this session (already displaced or expired there).
            self.client.transact_write_items(TransactItems=[
                self._revoke_update(session.session_id, reason=reason, at=at, by_device=by_device)])

    # --- refresh tokens and activity ------------------------------------------------------

    def rotate_refresh(self, session: SessionRecord, *, new_digest: str, now: int) -> bool:
        """Advance the refresh generation if nobody else did; False if someone did."""
        try:
            self.client.update_item(
                TableName=self.sessions, Key={"session_id": {"S": session.session_id}},
                UpdateExpression=("SET refresh_gen = :next, refresh_digest = :new, prev_refresh_digest = :old, "
                                  "rotated_epoch = :now, last_seen_epoch = :now"),
                ConditionExpression="refresh_gen = :gen AND #s = :active",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":next": {"N": str(session.refresh_gen + 1)}, ":gen": {"N": str(session.refresh_gen)},
                    ":new": {"S": new_digest}, ":old": {"S": session.refresh_digest},
                    ":now": {"N": str(now)}, ":active": {"S": SESSION_ACTIVE}})
            return True
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise

    def touch(self, session: SessionRecord, *, now: int) -> None:
        """Record activity on the session and its presence entry (at most once a minute)."""
        self.client.update_item(
            TableName=self.sessions, Key={"session_id": {"S": session.session_id}},
            UpdateExpression="SET last_seen_epoch = :now", ExpressionAttributeValues={":now": {"N": str(now)}})
        try:
            self.client.update_item(
                TableName=self.presence, Key={"user_uuid": {"S": session.user_uuid}},
                UpdateExpression="SET entries.#d.last_seen_epoch = :now",
                ConditionExpression="entries.#d.session_id = :sid",
                ExpressionAttributeNames={"#d": session.device_id},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":sid": {"S": session.session_id}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
