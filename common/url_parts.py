"""What urlsplit leaves unchecked: it passes over userinfo and over characters between an IPv6 literal's
"]" and its port ("http://[::1]x/" has the hostname ::1). A URL whose authority is not exactly the host and
port it parsed to is not one that a browser and this process read alike."""
from __future__ import annotations

from urllib.parse import SplitResult


def authority_is_parsed(parts: SplitResult) -> bool:
    """Whether `parts.netloc` is exactly `[host]` or `host`, then `:port` if one was given (case aside):
    no userinfo, no stray characters, no empty or zero-padded port. `parts.port` must parse."""
    host, port = parts.hostname or "", parts.port
    shown = f"[{host}]" if ":" in host else host
    return parts.netloc.lower() == shown + (f":{port}" if port is not None else "")
