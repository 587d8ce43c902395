"""A transaction entry handed from one domain to another's transaction, with its meaning."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from botocore.exceptions import ClientError

from common.database import dynamo


@dataclass(frozen=True)
class GuardedWrite:
    """A TransactWriteItems entry that a domain's service hands out for another domain's
    transaction, with the error its refused condition means (a class, or a function making
    one). The transaction raises that error itself: no caller matches a refusal by position."""

    item: dict[str, Any]
    refusal: Callable[[], Exception]
    # For an entry asking for the item it found (ReturnValuesOnConditionCheckFailure): its refusal made
    # from that item (None: there was none), instead of `refusal`.
    refusal_of_item: Callable[[dict[str, Any] | None], Exception] | None = None


def write_all(client: Any, writes: Sequence[GuardedWrite]) -> None:
    """All of `writes` in one TransactWriteItems, or none: then the refusal of the first entry whose
    condition failed (order them by which refusal should be told first)."""
    try:
        client.transact_write_items(TransactItems=[w.item for w in writes])
    except ClientError as exc:
        codes = dynamo.cancellation_codes(exc)
        if "ConditionalCheckFailed" in codes:
            at = codes.index("ConditionalCheckFailed")
            refused = writes[at]
            if refused.refusal_of_item is not None:
                found = (exc.response.get("CancellationReasons") or [])[at].get("Item")
                raise refused.refusal_of_item(dict(found) if found is not None else None) from None
            raise refused.refusal() from None
        raise
