"""The one clock of the product: what time it is in UTC, and that moment in whole epoch seconds (the unit
of every `*_epoch` field and TTL) or milliseconds (the security events' order). An app context reads it
through its own injectable clock (common.runtime.context.AppContext.now, .epoch); what runs without one (the
command line) reads it here."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def epoch(moment: datetime) -> int:
    """`moment` in whole seconds since the epoch, the fraction dropped."""
    return int(moment.timestamp())


def epoch_ms(moment: datetime) -> int:
    """`moment` in whole milliseconds since the epoch, the fraction dropped."""
    return int(moment.timestamp() * 1000)


def now_epoch() -> int:
    return epoch(utc_now())
