"""ISO 8601 UTC with `Z` (SPEC §3), and the IANA time zones this host knows."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones


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


NOT_IANA = {"localtime"}  # Debian's link to the host's own zone, which zoneinfo lists too


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """The IANA zone names this host knows (read once)."""
    return frozenset(available_timezones() - NOT_IANA)


def time_zone(name: str | None) -> ZoneInfo | None:
    """The zone an IANA name names, None when it names none this host knows (compared as a whole name, so
    no path or other text reaches zoneinfo)."""
    return ZoneInfo(name) if name is not None and name in time_zones() else None
