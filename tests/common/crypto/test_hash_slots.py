"""The per-process bound on password hashes (common/crypto/hash_slots.py), with real threads: at most
`slots` run, on the slots' own threads, `queue` more wait, the next is refused at once."""
from __future__ import annotations

import gc
import threading
import time

import pytest

from common.crypto.hash_slots import THREAD_NAME, HashingBusy, HashSlots, default_slots


def test_beyond_slots_and_queue_is_refused_at_once():
    slots = HashSlots(slots=1, queue=1)
    release, inside = threading.Event(), threading.Event()
    entered: list[str] = []

    def hold(name: str) -> None:
        def body() -> None:
            entered.append(name)
            inside.set()
            release.wait(10)
        slots.run(body)

    running = threading.Thread(target=hold, args=("running",))
    running.start()
    assert inside.wait(30)
    waiting = threading.Thread(target=hold, args=("waiting",))
    waiting.start()
    deadline = time.monotonic() + 10
    while slots._admitted._value and time.monotonic() < deadline:  # until it is admitted, to wait
        time.sleep(0.01)
    assert waiting.is_alive() and entered == ["running"]   # queued behind the running one
    with pytest.raises(HashingBusy):                        # a third finds the queue full
        slots.run(lambda: None)
    release.set()
    running.join(30), waiting.join(30)
    assert entered == ["running", "waiting"]
    assert slots.run(lambda: "freed") == "freed"            # freed again


def test_a_failing_hash_gives_its_slot_back_and_its_error_to_the_caller():
    slots = HashSlots(slots=1, queue=0)

    def boom() -> None:
        raise ValueError("boom")
    for _ in range(3):
        with pytest.raises(ValueError, match="boom"):
            slots.run(boom)
    assert slots.run(lambda: 1) == 1


def test_hashes_run_on_at_most_slots_threads_of_their_own_made_again_after_a_fork(monkeypatch):
    """Each slot's thread keeps the memory a hash needs for the next one (the module says why)."""
    slots = HashSlots(slots=2, queue=8)
    callers = [threading.Thread(target=lambda: [slots.run(lambda: names.add(threading.current_thread().name))
                                               for _ in range(20)]) for _ in range(6)]
    names: set[str] = set()
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    assert 1 <= len(names) <= 2 and all(name.startswith(THREAD_NAME) for name in names)
    one_at_a_time = {slots.run(lambda: threading.get_ident()) for _ in range(10)}
    assert len(one_at_a_time) == 1  # the thread that hashed last hashes next
    monkeypatch.setattr("common.crypto.hash_slots.os.getpid", lambda: -1)  # as in a worker forked after the first hash
    assert slots.run(lambda: threading.get_ident()) not in one_at_a_time  # a thread of its own, not the parent's
    assert slots._made == 1


def test_the_threads_end_with_their_slots():
    slots = HashSlots(slots=2, queue=0)
    thread = slots.run(threading.current_thread)
    assert thread.is_alive()
    del slots
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()


def test_default_slots_follow_cores_and_memory(monkeypatch):
    monkeypatch.setattr("common.crypto.hash_slots.available_cores", lambda: 8)
    assert default_slots(memory_cost_kib=19456, parallelism=1, memory_budget_mib=512) == 8
    assert default_slots(memory_cost_kib=19456, parallelism=4, memory_budget_mib=512) == 2
    assert default_slots(memory_cost_kib=2 * 1024 * 1024, parallelism=1, memory_budget_mib=512) == 1
    assert default_slots(memory_cost_kib=65536, parallelism=1, memory_budget_mib=256) == 4
