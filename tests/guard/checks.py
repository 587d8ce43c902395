"""What the guard's tests ask of a guard."""
from __future__ import annotations

from citylogin_guard import Guard, Unauthorized


def refused_code(guard: Guard, token: str) -> str | None:
    """The code `guard` refuses `token` with, or None if it lets it through."""
    try:
        guard.verify(f"Bearer {token}")
    except Unauthorized as refusal:
        return refusal.code
    return None
