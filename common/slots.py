"""Typed places on an app context for what a domain keeps there (its one watcher, registry copy, cache or
running threads): the domain declares a `Slot[T]` beside its type, and reads `ctx.slots.get_or_make(SLOT,
make)` as a T. The context (common.runtime.context) holds them without importing any domain."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Slot(Generic[T]):
    """The key of one thing a domain keeps per app context; compared by identity, named for messages."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


class Slots:
    """The things kept on one app context, each under its Slot. Thread-safe: each slot has its own lock,
    so a slot's `make` may read another slot (not its own)."""

    def __init__(self) -> None:
        self._values: dict[Slot[object], object] = {}
        self._locks: dict[Slot[object], threading.Lock] = {}
        self._guard = threading.Lock()  # only around the two dicts' own reads and writes

    def get(self, slot: Slot[T]) -> T | None:
        """The thing kept under `slot`, None before it is made (or after it is taken)."""
        with self._guard:
            return cast("T | None", self._values.get(cast("Slot[object]", slot)))

    def get_or_make(self, slot: Slot[T], make: Callable[[], T]) -> T:
        """The thing kept under `slot`, made by `make` at the first call (one call makes it, the others wait)."""
        key = cast("Slot[object]", slot)
        with self._guard:
            if key in self._values:
                return cast(T, self._values[key])
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._values:
                    return cast(T, self._values[key])
            made = make()
            with self._guard:
                self._values[key] = made
            return made

    def take(self, slot: Slot[T]) -> T | None:
        """The thing kept under `slot`, no longer kept (None if none was): for stopping what it runs."""
        with self._guard:
            return cast("T | None", self._values.pop(cast("Slot[object]", slot), None))
