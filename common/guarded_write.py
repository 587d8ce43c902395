"""A transaction entry handed from one domain to another's transaction, with its meaning."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class GuardedWrite:
    """A TransactWriteItems entry that a domain's service hands out for another domain's
    transaction, with the error its refused condition means (a class, or a function making
    one). The transaction raises that error itself: no caller matches a refusal by position."""

    item: dict
    refusal: Callable[[], Exception]
