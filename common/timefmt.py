"""ISO 8601 UTC with `Z` (SPEC §3)."""
from __future__ import annotations

from datetime import datetime, timezone


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_from_epoch(seconds: int) -> str:
    return iso(datetime.fromtimestamp(seconds, timezone.utc))


def aware_utc(now: datetime | None = None) -> datetime:
    """Return ``now`` (or the current time) as a timezone-aware UTC datetime; naive is refused."""
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime given; pass a timezone-aware UTC datetime")
    return now.astimezone(timezone.utc)
