"""Typed places on an app context for what a domain keeps there (its one watcher, registry copy, cache or
running threads): the domain declares a `Slot[T]` beside its type, and reads `ctx.slots.get_or_make(SLOT,
make)` as a T. The context (common.runtime.context) holds them without importing any domain.

A slot can also hold what a domain's blueprint asks of the packages above it (a Protocol the domain declares):
whoever composes the app, above both, gives it (`SLOT.given(value)`, put in before the blueprints are
registered), and the blueprint reads it with `ctx.slots.needed(SLOT)`."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Slot(Generic[T]):
    """The key of one thing a domain keeps per app context; compared by identity, named for messages."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"

    def given(self, value: T) -> Given[T]:
        """`value` for this slot, to put in an app's context as the app is composed."""
        return Given(self, value)


@dataclass(frozen=True)
class Given(Generic[T]):
    """A thing for a slot, given by what composes an app (a service gives a blueprint the flows it asks for)."""
    slot: Slot[T]
    value: T


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

    def put(self, given: Given[T]) -> None:
        """Keeps `given.value` under its slot (in place of what was kept there)."""
        with self._guard:
            self._values[cast("Slot[object]", given.slot)] = given.value

    def needed(self, slot: Slot[T]) -> T:
        """The thing given for `slot`; LookupError naming the slot when the app was composed without it."""
        value = self.get(slot)
        if value is None:
            raise LookupError(f"{slot.name}: not given to this app (its service gives it with the blueprints)")
        return value

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
