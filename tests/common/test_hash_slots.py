"""The per-process bound on password hashes (common/hash_slots.py), with real threads."""
from __future__ import annotations

import threading
import time

import pytest

from common.hash_slots import HashingBusy, HashSlots, default_slots


def test_beyond_slots_and_queue_is_refused_at_once():
    slots = HashSlots(slots=1, queue=1)
    release, inside = threading.Event(), threading.Event()
    entered: list[str] = []

    def hold(name: str) -> None:
        with slots.held():
            entered.append(name)
            inside.set()
            release.wait(10)

    running = threading.Thread(target=hold, args=("running",))
    running.start()
    assert inside.wait(5)
    waiting = threading.Thread(target=hold, args=("waiting",))
    waiting.start()
    deadline = time.monotonic() + 10
    while slots._admitted._value and time.monotonic() < deadline:  # until it is admitted, to wait
        time.sleep(0.01)
    assert waiting.is_alive() and entered == ["running"]   # queued behind the running one
    with pytest.raises(HashingBusy):                        # a third finds the queue full
        with slots.held():
            pass
    release.set()
    running.join(5), waiting.join(5)
    assert entered == ["running", "waiting"]
    with slots.held():                                      # freed again
        pass


def test_a_failing_body_gives_its_slot_back():
    slots = HashSlots(slots=1, queue=0)
    for _ in range(3):
        with pytest.raises(ValueError):
            with slots.held():
                raise ValueError("boom")
    with slots.held():
        pass


def test_default_slots_follow_cores_and_memory(monkeypatch):
    monkeypatch.setattr("common.hash_slots.available_cores", lambda: 8)
    assert default_slots(memory_cost_kib=19456, parallelism=1, memory_budget_mib=512) == 8
    assert default_slots(memory_cost_kib=19456, parallelism=4, memory_budget_mib=512) == 2
    assert default_slots(memory_cost_kib=2 * 1024 * 1024, parallelism=1, memory_budget_mib=512) == 1
    assert default_slots(memory_cost_kib=65536, parallelism=1, memory_budget_mib=256) == 4
