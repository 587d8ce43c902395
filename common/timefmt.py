"""ISO 8601 UTC with `Z` (SPEC §3)."""
from __future__ import annotations

from datetime import datetime, timezone


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_from_epoch(seconds: int) -> str:
    return iso(datetime.fromtimestamp(seconds, timezone.utc))
