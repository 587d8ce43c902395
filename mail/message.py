"""One notification to one person, as every way of sending it takes it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One notification to one user; `event` is a stable name such as "new_device"."""

    event: str
    user_uuid: str
    email: str | None
    subject: str
    body: str
