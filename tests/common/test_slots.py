"""The typed places an app context keeps the domains' one-per-app things in (common/slots.py): made once
however many threads ask at the same moment, each slot its own (a slot's make may read another), and
gone once taken."""
from __future__ import annotations

import threading

from common.slots import Slot, Slots

DEADLINE = 30.0  # seconds: generous, the threads below wait on events, never on timing


def test_a_slot_is_made_once_while_many_threads_ask_for_it() -> None:
    slots, slot = Slots(), Slot[list[int]]("things")
    entered, release = threading.Event(), threading.Event()
    made: list[list[int]] = []

    def make() -> list[int]:
        thing: list[int] = []
        made.append(thing)
        entered.set()
        assert release.wait(DEADLINE)
        return thing

    got: list[list[int]] = []
    calling = threading.Semaphore(0)

    def ask() -> None:
        calling.release()
        got.append(slots.get_or_make(slot, make))

    first = threading.Thread(target=ask)
    first.start()
    assert entered.wait(DEADLINE)
    others = [threading.Thread(target=ask) for _ in range(8)]
    for thread in others:
        thread.start()
    for _ in range(9):
        assert calling.acquire(timeout=DEADLINE)
    assert slots.get(slot) is None  # not kept before its make returns
    release.set()
    for thread in [first, *others]:
        thread.join(DEADLINE)
    assert len(made) == 1
    assert len(got) == 9 and all(thing is made[0] for thing in got)
    assert slots.get(slot) is made[0]


def test_a_slots_make_may_read_another_slot() -> None:
    slots = Slots()
    feed, watcher = Slot[str]("feed"), Slot[tuple[str, str]]("watcher")
    made = slots.get_or_make(watcher, lambda: ("watcher", slots.get_or_make(feed, lambda: "feed")))
    assert made == ("watcher", "feed")
    assert slots.get(feed) == "feed"


def test_a_taken_slot_is_made_again_and_slots_are_apart() -> None:
    slots, one, two = Slots(), Slot[object]("one"), Slot[object]("one")  # same name, another slot
    first = slots.get_or_make(one, object)
    assert slots.get(two) is None
    assert slots.take(one) is first
    assert slots.get(one) is None and slots.take(one) is None
    assert slots.get_or_make(one, object) is not first
    assert Slots().get(one) is None  # another app context keeps its own


def test_a_given_thing_is_what_its_slot_needs_and_a_missing_one_is_named() -> None:
    slots, flows = Slots(), Slot[str]("accounts.views.flows")
    try:
        slots.needed(flows)
    except LookupError as missing:
        assert "accounts.views.flows" in str(missing)
    else:
        raise AssertionError("a slot nothing was given for was needed without an error")
    slots.put(flows.given("the flows"))
    assert slots.needed(flows) == "the flows"
    slots.put(flows.given("others"))  # given again: the later one is kept
    assert slots.needed(flows) == "others"
