"""The sessions table and the presence table: one session per login, one presence record per
user listing its logged-in devices under a version number (SPEC §5, §8). Every write that ends a
session puts its event into the security events feed in the same transaction (SPEC §11)."""
from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from typing import Any, Sequence

from botocore.exceptions import ClientError

from common.database import dynamo
from sessions.feed_store import event_put
from sessions.models import (NOT_SAID, SESSION_ACTIVE, SESSION_REVOKED, EndedBy, Ending, Holder, Presence,
                             PresenceEntry, RevokeReason, SessionRecord)
from sessions.session_lists import UserSessions, record as _record


class PresenceChanged(dynamo.StoreRefusal):
    """Another request changed the user's presence first; re-read and decide again."""


class IdleSessionsInUse(PresenceChanged):
    """Sessions the login took for idle were used meanwhile (`session_ids`); they are live."""

    def __init__(self, session_ids: list[str]) -> None:
        super().__init__(session_ids)
        self.session_ids = session_ids


class ExtraWriteRefused(dynamo.StoreRefusal):
    """A caller's extra transaction entry failed its condition; `.index` counts from 0."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class Activity(Enum):
    """What recording activity on a session (a touch or a refresh) came to."""

    RECORDED = "recorded"
    SESSION_CHANGED = "session_changed"  # ended, or (refresh) rotated by someone else: re-read it
    NOT_COUNTED = "not_counted"          # live by its record, but the presence no longer lists it
    CONFLICT = "conflict"                # a concurrent transaction on the same items
    EXTRA_REFUSED = "extra_refused"      # (refresh) the write that went with it was refused: its proof was spent


SESSION_RETENTION_SECONDS = 7 * 86400
FORGET_TOGETHER = 100  # records stripped in one transaction (DynamoDB's most items a transaction)


def retention_ttl(end_epoch: int) -> int:
    """The sessions table's TTL rule, the one place it lives: a record is kept a week past the end
    of its session (for an active one, its latest possible end, the max lifetime), so an old token
    still meets 401 session_revoked with its reason and the list shows recent ended sessions."""
    return end_epoch + SESSION_RETENTION_SECONDS


class SessionStore(UserSessions):
    def __init__(self, client: Any, *, sessions_table: str, presence_table: str, events_table: str) -> None:
        self.client, self.sessions, self.presence, self.events = client, sessions_table, presence_table, events_table

    # --- reads ---------------------------------------------------------------------------

    def get(self, session_id: str) -> SessionRecord | None:
        item = self.client.get_item(TableName=self.sessions, Key={"session_id": {"S": session_id}},
                                    ConsistentRead=True).get("Item")
        return self.from_item(item)

    @staticmethod
    def key(session_id: str) -> dict[str, Any]:
        return {"session_id": {"S": session_id}}

    @staticmethod
    def from_item(item: dict[str, Any] | None) -> SessionRecord | None:
        return _record(SessionRecord, dynamo.from_item(item)) if item else None

    def batch_states(self, session_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The liveness fields of up to 100 sessions in one strongly consistent BatchGetItem
        (plus retries of unprocessed keys)."""
        request = {self.sessions: {
            "Keys": [{"session_id": {"S": sid}} for sid in session_ids], "ConsistentRead": True,
            "ProjectionExpression": ("session_id, #s, revoked_reason, by_device, admin_action, by_app, by_app_name, "
                                   "expires_epoch, last_seen_epoch"),
            "ExpressionAttributeNames": {"#s": "status"}}}
        states: dict[str, dict[str, Any]] = {}
        while request:
            response = self.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.sessions, []):
                state = dynamo.from_item(item)
                states[state["session_id"]] = state
            request = response.get("UnprocessedKeys") or {}
        return states

    @staticmethod
    def presence_key(user_uuid: str) -> dict[str, Any]:
        return {"user_uuid": {"S": user_uuid}}

    @staticmethod
    def presence_from_item(user_uuid: str, item: dict[str, Any] | None) -> Presence:
        if not item:
            return Presence(user_uuid=user_uuid)
        data = dynamo.from_item(item)
        entries = {device: _record(PresenceEntry, entry) for device, entry in data.get("entries", {}).items()}
        return Presence(user_uuid=user_uuid, version=data["version"], entries=entries,
                        login_seq=data.get("login_seq", 0))

    def get_presence(self, user_uuid: str) -> Presence:
        item = self.client.get_item(TableName=self.presence, Key=self.presence_key(user_uuid),
                                    ConsistentRead=True).get("Item")
        return self.presence_from_item(user_uuid, item)

    def delete_presence(self, user_uuid: str) -> None:
        """Forget the user's presence record (account deletion; its sessions are ended first)."""
        self.client.delete_item(TableName=self.presence, Key={"user_uuid": {"S": user_uuid}})

    def forget_personal_details(self, session_ids: Sequence[str]) -> None:
        """Empty the device name and drop the IP address, user agent and apps signed in of ended
        sessions' records (account deletion): what is left are ids, times, digests and the end's reason.
        The name is emptied, not removed, so that every release reads the record as before. In
        transactions of FORGET_TOGETHER records, not a call each: an account that lived long has
        hundreds, and its DELETE /account waits for them. A transaction refused (a record expired away
        meanwhile, or another pass of the deletion at the same records) leaves its records to a write each."""
        for start in range(0, len(session_ids), FORGET_TOGETHER):
            chunk = session_ids[start:start + FORGET_TOGETHER]
            try:
                self.client.transact_write_items(TransactItems=[{"Update": self._forget(sid)} for sid in chunk])
            except ClientError as exc:
                if dynamo.outage_cause(exc) == "throttling" or not (
                        dynamo.cancellation_codes(exc) or dynamo.error_code(exc) == "TransactionConflictException"):
                    raise
                for session_id in chunk:
                    self._forget_one(session_id)

    def _forget(self, session_id: str) -> dict[str, Any]:
        return {"TableName": self.sessions, "Key": {"session_id": {"S": session_id}},
                "UpdateExpression": "SET device_name = :none REMOVE ip, user_agent, app_names",
                "ConditionExpression": "attribute_exists(session_id)",
                "ExpressionAttributeValues": {":none": {"S": ""}}}

    def _forget_one(self, session_id: str) -> None:
        try:
            self.client.update_item(**self._forget(session_id))
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):  # expired away meanwhile: nothing to forget
                raise

    # --- the invariant: membership changes only through a versioned presence write ---------

    def _presence_put(self, before: Presence, entries: dict[str, PresenceEntry]) -> dict[str, Any]:
        # The login sequence never goes back, whoever leaves the presence (SPEC §5's eviction order).
        login_seq = max([before.login_seq, *(e.login_seq or 0 for e in entries.values())])
        item = {"user_uuid": before.user_uuid, "version": before.version + 1, "login_seq": login_seq or None,
                "entries": {device: _entry_item(entry) for device, entry in entries.items()}}
        condition = "attribute_not_exists(user_uuid)" if before.version == 0 else "#v = :v"
        put: dict[str, Any] = {"TableName": self.presence, "Item": dynamo.to_item(item),
                               "ConditionExpression": condition}
        if before.version:
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":v": {"N": str(before.version)}}
        return {"Put": put}

    def _revoke_update(self, session_id: str, *, reason: str, at: str, end_epoch: int, by_device: str | None,
                       locked: bool = False, ended_by: EndedBy = NOT_SAID) -> dict[str, Any]:
        values: dict[str, dict[str, Any]] = {":revoked": {"S": SESSION_REVOKED}, ":reason": {"S": reason},
                                             ":at": {"S": at}, ":ttl": {"N": str(retention_ttl(end_epoch))}}
        expression = "SET #s = :revoked, revoked_reason = :reason, revoked_at = :at, #ttl = :ttl"
        if by_device:
            expression += ", by_device = :by"
            values[":by"] = {"S": by_device}
        if locked:
            expression += ", locked = :locked"
            values[":locked"] = {"BOOL": True}
        for name, value in ended_by.fields().items():  # the 401 session_revoked says them too
            expression += f", {name} = :{name}"
            values[f":{name}"] = {"S": value}
        expression += " REMOVE live_shard, live_screen_of"  # out of the indexes of live sessions
        return {"Update": {"TableName": self.sessions, "Key": {"session_id": {"S": session_id}},
                           "UpdateExpression": expression,
                           "ExpressionAttributeNames": {"#s": "status", "#ttl": dynamo.TTL_ATTRIBUTE},
                           "ExpressionAttributeValues": values}}

    def record_reauthentication(self, session_id: str, *, now: int) -> bool:
        """Note a re-authentication on an active session (never moving it back); False if it ended."""
        try:
            self.client.update_item(
                TableName=self.sessions, Key={"session_id": {"S": session_id}},
                UpdateExpression="SET reauth_epoch = :now",
                ConditionExpression="#s = :active AND (attribute_not_exists(reauth_epoch) OR reauth_epoch <= :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":active": {"S": SESSION_ACTIVE}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
            return False
        return True

    def rebind_item(self, session: SessionRecord, *, jkt: str) -> dict[str, Any]:
        """The TransactWriteItems entry that moves a live bound session to the key `jkt`; refused if
        it ended or moved meanwhile."""
        return {"Update": {
            "TableName": self.sessions, "Key": {"session_id": {"S": session.session_id}},
            "UpdateExpression": "SET jkt = :new", "ConditionExpression": "#s = :active AND jkt = :old",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":new": {"S": jkt}, ":old": {"S": session.jkt or ""},
                                          ":active": {"S": SESSION_ACTIVE}}}}

    def _idle_revoke(self, session_id: str, *, cutoff: int, at: str, end_epoch: int) -> dict[str, Any]:
        # Dropping a presence entry as idle ends its session too, but only if the session really
        # is idle (or already over): a touch or refresh that got in first cancels the login. One
        # that had already ended keeps its reason and time; its TTL moves to a week past now.
        return {"Update": {
            "TableName": self.sessions, "Key": {"session_id": {"S": session_id}},
            "UpdateExpression": ("SET #s = :revoked, revoked_reason = if_not_exists(revoked_reason, :reason), "
                                 "revoked_at = if_not_exists(revoked_at, :at), #ttl = :ttl "
                                 "REMOVE live_shard, live_screen_of"),
            "ConditionExpression": "attribute_exists(session_id) AND (#s <> :active OR last_seen_epoch <= :cutoff)",
            "ExpressionAttributeNames": {"#s": "status", "#ttl": dynamo.TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {":revoked": {"S": SESSION_REVOKED}, ":active": {"S": SESSION_ACTIVE},
                                          ":reason": {"S": RevokeReason.IDLE_TIMEOUT}, ":at": {"S": at},
                                          ":cutoff": {"N": str(cutoff)},
                                          ":ttl": {"N": str(retention_ttl(end_epoch))}}}}

    def _events(self, endings: list[Ending], at_ms: int) -> list[dict[str, Any]]:
        return [event_put(self.events, ending, at_ms=at_ms) for ending in endings]

    def open_session(self, *, before: Presence, entries: dict[str, PresenceEntry], session: SessionRecord,
                     displaced: list[Ending], idle: list[Ending], idle_cutoff: int, at: str, at_ms: int,
                     extra_writes: list[dict[str, Any]], unconditional: Sequence[dict[str, Any]] = ()) -> None:
        """Replace the presence (if unchanged since read), create `session`, end the `displaced`
        sessions and the `idle` ones (if still idle at `idle_cutoff`), put their events, and
        `extra_writes` and `unconditional` (puts that refuse nothing, such as the login's history
        row): all in one transaction. The sessions it ends, end as `session` begins."""
        ended = session.login_epoch
        head = [self._presence_put(before, entries),
                {"Put": {"TableName": self.sessions, "Item": dynamo.to_item(asdict(session)),
                         "ConditionExpression": "attribute_not_exists(session_id)"}},
                *[self._revoke_update(e.session_id, reason=e.reason, at=at, end_epoch=ended, by_device=e.by_device)
                  for e in displaced]]
        idle_items = [self._idle_revoke(e.session_id, cutoff=idle_cutoff, at=at, end_epoch=ended) for e in idle]
        events = self._events([*displaced, *idle], at_ms)  # last: the indexes below do not count them
        failed = self._transact([*head, *idle_items, *extra_writes, *events, *unconditional])
        if not failed:
            return
        if 0 in failed or "TransactionConflict" in failed.values():
            raise PresenceChanged()
        in_use = [idle[i - len(head)].session_id for i in failed if len(head) <= i < len(head) + len(idle)]
        if in_use:
            raise IdleSessionsInUse(in_use)
        extra = [i - len(head) - len(idle) for i in failed
                 if len(head) + len(idle) <= i < len(head) + len(idle) + len(extra_writes)]
        if extra:
            raise ExtraWriteRefused(extra[0])
        raise PresenceChanged()

    def relabel(self, *, before: Presence, entries: dict[str, PresenceEntry], session_id: str | None,
                device_class: str, idle: list[Ending], idle_cutoff: int, at: str, end_epoch: int, at_ms: int,
                extra_writes: list[dict[str, Any]]) -> None:
        """Replace the presence (if unchanged since read) with `entries`, where the relabelled
        device's live session `session_id` (if any) counts as `device_class` from `at`, end the
        `idle` sessions (if still idle) and commit `extra_writes` (the device's new class), all in
        one transaction: a class changes only together with the count it is kept by (SPEC §5)."""
        head = [self._presence_put(before, entries)]
        if session_id:
            head.append({"Update": {
                "TableName": self.sessions, "Key": {"session_id": {"S": session_id}},
                "UpdateExpression": "SET class_changes = list_append(if_not_exists(class_changes, :none), :change)",
                "ConditionExpression": "attribute_exists(session_id)",
                "ExpressionAttributeValues": {":none": {"L": []}, ":change": {"L": [dynamo.to_item(
                    {"c": {"at": at, "device_class": device_class}})["c"]]}}}})
        idle_items = [self._idle_revoke(e.session_id, cutoff=idle_cutoff, at=at, end_epoch=end_epoch) for e in idle]
        failed = self._transact([*head, *idle_items, *extra_writes, *self._events(idle, at_ms)])
        if not failed:
            return
        if any(i < len(head) for i in failed) or "TransactionConflict" in failed.values():
            raise PresenceChanged()
        in_use = [idle[i - len(head)].session_id for i in failed if len(head) <= i < len(head) + len(idle)]
        if in_use:
            raise IdleSessionsInUse(in_use)
        raise ExtraWriteRefused(min(i - len(head) - len(idle) for i in failed))

    def _transact(self, items: list[dict[str, Any]]) -> dict[int, str]:
        """Run one TransactWriteItems; {} if it committed, else {item index: reason} of the items
        that failed ({-1: "TransactionConflict"} for a conflict without per-item reasons)."""
        try:
            self.client.transact_write_items(TransactItems=items)
            return {}
        except ClientError as exc:
            if dynamo.outage_cause(exc) == "throttling":
                raise  # DynamoDB cannot serve now (a 503): not a race to read again and retry
            codes = dynamo.cancellation_codes(exc)
            if codes:
                return {i: code for i, code in enumerate(codes) if code not in ("None", "")}
            if dynamo.error_code(exc) == "TransactionConflictException":
                return {-1: "TransactionConflict"}
            raise

    def _presence_remove(self, session: SessionRecord) -> dict[str, Any]:
        """The transaction entry taking `session`'s device out of the presence, if it still lists this session."""
        return {"Update": {
            "TableName": self.presence, "Key": {"user_uuid": {"S": session.user_uuid}},
            "UpdateExpression": "REMOVE entries.#d SET #v = #v + :one",
            "ConditionExpression": "entries.#d.session_id = :sid",
            "ExpressionAttributeNames": {"#d": session.device_id, "#v": "version"},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":sid": {"S": session.session_id}}}}

    def _ending_event(self, session: SessionRecord, *, reason: str, by_device: str | None,
                      at_ms: int, ended_by: EndedBy = NOT_SAID) -> dict[str, Any]:
        return event_put(self.events, Ending(session_id=session.session_id, user_uuid=session.user_uuid,
                                             device_id=session.device_id, reason=reason, by_device=by_device,
                                             ended_by=ended_by),
                         at_ms=at_ms)

    def due(self, shard: str, *, now: int) -> list[str]:
        """The active sessions of `shard` that end without a write by `now` (from the index:
        eventually consistent, so read each again before acting)."""
        return self._indexed({"TableName": self.sessions, "IndexName": dynamo.SESSIONS_ENDING,
                              "KeyConditionExpression": "live_shard = :s AND ends_at <= :now",
                              "ExpressionAttributeValues": {":s": {"S": shard}, ":now": {"N": str(now)}}})

    def screens_of(self, client_id: str) -> list[str]:
        """The active screens' sessions of the app `client_id` (from the sparse index: eventually
        consistent, so read each again before acting)."""
        return self._indexed({"TableName": self.sessions, "IndexName": dynamo.SESSIONS_BY_SCREEN_APP,
                              "KeyConditionExpression": "live_screen_of = :c",
                              "ExpressionAttributeValues": {":c": {"S": client_id}}})

    def _indexed(self, args: dict[str, Any]) -> list[str]:
        """The session ids of every page of the Query `args` on one of the sessions' indexes."""
        ids: list[str] = []
        while True:
            page = self.client.query(**args)
            ids += [item["session_id"]["S"] for item in page["Items"]]
            if not page.get("LastEvaluatedKey"):
                return ids
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def screen_redeemed_items(self, holder: Holder, *, app: tuple[str, str], now: int, idle_cutoff: int,
                              expires_epoch: int) -> list[dict[str, Any]]:
        """TransactWriteItems entries of a screen redeeming its approval while its session is live: the
        session and its presence entry live on until `expires_epoch` (the session's max lifetime) instead of
        the code's expiry, from `now` as its first activity, and `app` joins the apps signed in on it."""
        check = self.live_check_item(holder, now=now, idle_cutoff=idle_cutoff, any_key=True, app=app)["Update"]
        ends_at = min(expires_epoch, 2 * now - idle_cutoff)  # as a touch: the idle timeout from now
        session = {**check, "UpdateExpression": (
            "SET expires_epoch = :exp, ends_at = :ends, last_seen_epoch = :now, #ttl = :ttl "
            "REMOVE unredeemed ADD app_names :app"),
            "ExpressionAttributeNames": {**check["ExpressionAttributeNames"], "#ttl": dynamo.TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {**check["ExpressionAttributeValues"], ":exp": {"N": str(expires_epoch)},
                                          ":ends": {"N": str(ends_at)},
                                          ":ttl": {"N": str(retention_ttl(expires_epoch))}}}
        entry = {"TableName": self.presence, "Key": self.presence_key(holder.user_uuid),
                 "UpdateExpression": "SET entries.#d.expires_epoch = :exp, entries.#d.last_seen_epoch = :now",
                 "ConditionExpression": "entries.#d.session_id = :sid",
                 "ExpressionAttributeNames": {"#d": holder.device_id},
                 "ExpressionAttributeValues": {":exp": {"N": str(expires_epoch)}, ":now": {"N": str(now)},
                                               ":sid": {"S": holder.session_id}}}
        return [{"Update": session}, {"Update": entry}]

    def end_over(self, session: SessionRecord, *, reason: str, at: str, at_ms: int, idle_cutoff: int) -> bool:
        """End `session` as over by time (`reason` idle_timeout or max_lifetime) with its event, and
        take it out of the presence, atomically; only if it still is active and over (a request that
        used it meanwhile wins). True if this call ended it."""
        end_epoch = at_ms // 1000
        revoke = self._revoke_update(session.session_id, reason=reason, at=at, end_epoch=end_epoch, by_device=None)
        update = revoke["Update"]
        over = {"Update": {**update, "ConditionExpression": (
            "#s = :active AND (last_seen_epoch <= :cutoff OR expires_epoch <= :now)"),
            "ExpressionAttributeValues": {**update["ExpressionAttributeValues"], ":active": {"S": SESSION_ACTIVE},
                                          ":cutoff": {"N": str(idle_cutoff)}, ":now": {"N": str(end_epoch)}}}}
        event = self._ending_event(session, reason=reason, by_device=None, at_ms=at_ms)
        remove = self._presence_remove(session)
        for _ in range(10):
            failed = self._transact([over, event, remove])
            if not failed:
                return True
            if failed.get(0) == "ConditionalCheckFailed":
                return False  # used meanwhile, or ended
            if failed.get(2) == "ConditionalCheckFailed":  # the presence no longer lists it
                return not self._transact([over, event])
        raise PresenceChanged()

    def revoke(self, session: SessionRecord, *, reason: str, at: str, at_ms: int, by_device: str | None,
               locked: bool = False, ended_by: EndedBy = NOT_SAID) -> None:
        """Mark `session` revoked at `at` (`at_ms`, the same moment; `locked`: by an account lock;
        `ended_by`: kept on the record and in the event), take its device out of the presence record
        and put its event, atomically."""
        end_epoch = at_ms // 1000
        event = self._ending_event(session, reason=reason, by_device=by_device, at_ms=at_ms, ended_by=ended_by)
        remove = self._presence_remove(session)
        revoke = self._revoke_update(session.session_id, reason=reason, at=at, end_epoch=end_epoch,
                                     by_device=by_device, locked=locked, ended_by=ended_by)
        for _ in range(10):
            failed = self._transact([remove, revoke, event])
            if not failed:
                return
            if failed.get(0) == "ConditionalCheckFailed":
                # The presence no longer lists this session: it was displaced or ended there, or
                # it is left from before the presence counted it. End it if nothing has yet; the
                # first ending, its reason and its event stand.
                self._revoke_if_active(revoke, event)
                return
        raise PresenceChanged()

    def _revoke_if_active(self, revoke: dict[str, Any], event: dict[str, Any]) -> None:
        update = revoke["Update"]
        if_active = {"Update": {**update, "ConditionExpression": "#s = :active",
                                "ExpressionAttributeValues": {**update["ExpressionAttributeValues"],
                                                              ":active": {"S": SESSION_ACTIVE}}}}
        for _ in range(10):
            failed = self._transact([if_active, event])
            if not failed or failed.get(0) == "ConditionalCheckFailed":  # ended, or already over
                return
        raise PresenceChanged()

    # --- activity: a touch or a refresh moves last_seen on the session and its presence entry --

    def _activity_items(self, session: SessionRecord | Holder, *, set_session: str, values: dict[str, Any],
                        condition: str, now: int, idle_cutoff: int, apps: set[str] | None = None) -> list[Any]:
        live = [condition, "#s = :active", "last_seen_epoch > :cutoff", "expires_epoch > :now"]
        # cutoff = now - idle span: the session now ends without a write at now + idle span, or at its max lifetime
        ends_at = min(session.expires_epoch, 2 * now - idle_cutoff)
        return [
            {"Update": {"TableName": self.sessions, "Key": {"session_id": {"S": session.session_id}},
                        "UpdateExpression": "SET " + ", ".join(filter(None, [
                            set_session, "last_seen_epoch = :now", "ends_at = :ends"])),
                        "ConditionExpression": " AND ".join(filter(None, live)),
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {**values, ":now": {"N": str(now)}, ":ends": {"N": str(ends_at)},
                                                      ":active": {"S": SESSION_ACTIVE},
                                                      ":cutoff": {"N": str(idle_cutoff)}}}},
            {"Update": {"TableName": self.presence, "Key": {"user_uuid": {"S": session.user_uuid}},
                        # with the apps signed in on the session: the seat names them (SPEC §5), for no write more
                        "UpdateExpression": "SET entries.#d.last_seen_epoch = :now" + (
                            ", entries.#d.app_names = :apps" if apps else ""),
                        "ConditionExpression": "entries.#d.session_id = :sid",
                        "ExpressionAttributeNames": {"#d": session.device_id},
                        "ExpressionAttributeValues": {":now": {"N": str(now)}, ":sid": {"S": session.session_id},
                                                      **({":apps": {"SS": sorted(apps)}} if apps else {})}}}]

    def _record_activity(self, items: list[dict[str, Any]]) -> Activity:
        failed = self._transact(items)
        if not failed:
            return Activity.RECORDED
        if "TransactionConflict" in failed.values():
            return Activity.CONFLICT
        if 0 in failed:
            return Activity.SESSION_CHANGED
        return Activity.NOT_COUNTED if 1 in failed else Activity.EXTRA_REFUSED

    def live_check_item(self, holder: Holder, *, now: int, idle_cutoff: int, any_key: bool = False,
                        app: tuple[str, str] | None = None) -> dict[str, Any]:
        """A transaction entry that holds only while the session is live (active, within its idle
        timeout and max lifetime), still `holder`'s, and bound to `holder.jkt` (or to no key) unless
        `any_key` (an app's grant on the session does not care which key the device's own tokens use).
        With `app` ((client_id, name), an app signing in on it), the same condition on an update adding
        the app to the session's `app_names`."""
        bound = "" if any_key else " AND " + ("jkt = :jkt" if holder.jkt else "attribute_not_exists(jkt)")
        keyed = holder.jkt and not any_key
        values: dict[str, Any] = {":active": {"S": SESSION_ACTIVE}, ":cutoff": {"N": str(idle_cutoff)},
                                  ":now": {"N": str(now)}, ":u": {"S": holder.user_uuid}, ":d": {"S": holder.device_id},
                                  **({":jkt": {"S": holder.jkt}} if keyed else {})}
        check = {
            "TableName": self.sessions, "Key": {"session_id": {"S": holder.session_id}},
            "ConditionExpression": ("#s = :active AND last_seen_epoch > :cutoff AND expires_epoch > :now AND "
                                    f"user_uuid = :u AND device_id = :d{bound}"),
            "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": values}
        if app is None:
            return {"ConditionCheck": check}
        values[":app"] = {"SS": [" ".join(app)]}
        return {"Update": {**check, "UpdateExpression": "ADD app_names :app"}}

    def rotate_refresh(self, holder: Holder, *, generation: int, old_digest: str, new_digest: str, new_kid: str,
                       now: int, idle_cutoff: int, extra_write: dict[str, Any] | None = None) -> Activity:
        """Advance the refresh generation of a live session from `generation`, whose refresh token has
        `old_digest`, if nobody else did and the session is still bound to `holder.jkt` (or to no key),
        as activity, in one transaction with `extra_write` (a bound refresh's proof being spent)."""
        bound = "jkt = :jkt" if holder.jkt else "attribute_not_exists(jkt)"
        items = self._activity_items(
            holder, now=now, idle_cutoff=idle_cutoff,
            condition=f"refresh_gen = :gen AND refresh_digest = :old AND {bound}",
            set_session=("refresh_gen = :next, refresh_digest = :new, prev_refresh_digest = :old, "
                         "refresh_kid = :kid, rotated_epoch = :now"),
            values={":next": {"N": str(generation + 1)}, ":gen": {"N": str(generation)},
                    ":new": {"S": new_digest}, ":old": {"S": old_digest}, ":kid": {"S": new_kid},
                    **({":jkt": {"S": holder.jkt}} if holder.jkt else {})})
        return self._record_activity([*items, *([extra_write] if extra_write else [])])

    def touch(self, session: SessionRecord, *, now: int, idle_cutoff: int) -> Activity:
        """Record activity on a live session and its presence entry (at most once per touch interval)."""
        return self._record_activity(self._activity_items(
            session, now=now, idle_cutoff=idle_cutoff, condition="", set_session="", values={}, apps=session.app_names))


def _entry_item(entry: PresenceEntry) -> dict[str, Any]:
    """A presence entry as the record keeps it: fields without a value left out, so that an app's sign-in
    can ADD to the entry's app_names (a NULL is no set to add to)."""
    return {name: value for name, value in asdict(entry).items() if value is not None}
