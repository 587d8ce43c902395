"""A person's sessions, read from the sessions table's user index: the whole list, a page of it
under an opaque cursor, and the items as stored (a person's data export). Part of SessionStore."""
from __future__ import annotations

import base64
import json
import uuid
from itertools import islice
from typing import Any, Callable, ClassVar, Iterator, Protocol, TypeVar

from common.timefmt import parse_iso
from common.database import dynamo, item_listing
from sessions.history_store import BadCursor
from sessions.models import SessionRecord


class _Dataclass(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


D = TypeVar("D", bound=_Dataclass)


def record(cls: type[D], data: dict[str, Any]) -> D:
    """A dataclass `cls` of an item's attributes, those it does not know left out."""
    return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class UserSessions:
    """The reads of SessionStore by user (it sets `client` and `sessions`, the table's name)."""

    client: Any
    sessions: str

    def items(self, user_uuid: str) -> list[dict[str, Any]]:
        """The user's session items from the user index, as stored (a person's data export)."""
        return item_listing.partition_items(self.client, self.sessions, partition=("user_uuid", user_uuid),
                                            index=dynamo.SESSIONS_BY_USER)

    def list_for_user(self, user_uuid: str) -> list[SessionRecord]:
        """The user's sessions, newest first, from the user index (eventually consistent)."""
        return list(self._iter_for_user(user_uuid))

    def page_for_user(self, user_uuid: str, *, limit: int, cursor: str | None,
                      keep: Callable[[SessionRecord], bool]) -> tuple[list[SessionRecord], str | None]:
        """Up to `limit` of the user's sessions that `keep` accepts, newest first, after `cursor`,
        and the next page's cursor (None at the end). It queries on until the page is full, so a
        filtered page is short only at the end; BadCursor for a cursor this store did not make."""
        after = _start_key(user_uuid, cursor) if cursor else None
        wanted = (r for r in self._iter_for_user(user_uuid, after=after, batch=limit + 1) if keep(r))
        page = list(islice(wanted, limit + 1))  # one more than asked: is there a next page at all?
        if len(page) <= limit:
            return page, None
        return page[:limit], _cursor(page[limit - 1])

    def _iter_for_user(self, user_uuid: str, *, after: dict[str, Any] | None = None,
                       batch: int | None = None) -> Iterator[SessionRecord]:
        args: dict[str, Any] = {
            "TableName": self.sessions, "IndexName": dynamo.SESSIONS_BY_USER, "ScanIndexForward": False,
            "KeyConditionExpression": "#u = :u", "ExpressionAttributeNames": {"#u": "user_uuid"},
            "ExpressionAttributeValues": {":u": {"S": user_uuid}}}
        if batch:
            args["Limit"] = batch
        start = after
        while True:
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            yield from (record(SessionRecord, dynamo.from_item(i)) for i in page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return


# --- the session list's cursor: the index key of the last session of a page -----------------

def _cursor(session: SessionRecord) -> str:
    data = json.dumps({"c": session.created_at, "s": session.session_id})
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _start_key(user_uuid: str, cursor: str) -> dict[str, Any]:
    # The cursor carries no user: the caller's own partition is put around it, so a cursor can
    # only ever position a Query within the caller's sessions.
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at, session_id = data["c"], data["s"]
        if not (isinstance(created_at, str) and 0 < len(created_at) <= 40 and isinstance(session_id, str)
                and str(uuid.UUID(session_id)) == session_id):
            raise ValueError(cursor)
        parse_iso(created_at)
    except (ValueError, TypeError, KeyError, RecursionError):
        raise BadCursor(cursor) from None
    return {"user_uuid": {"S": user_uuid}, "created_at": {"S": created_at}, "session_id": {"S": session_id}}
