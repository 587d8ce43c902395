"""SPEC §5's eviction order as a pure function: the logins are displaced in the order they were
accepted (the presence record's sequence), never by a clock's whole seconds; least_recently_used
breaks its ties the same way; an entry a previous release wrote (no sequence) came before every
login with one, and among such entries the time decides. Over generated presence records, with
ties, clocks that disagree with the sequence, and entries of both kinds."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import ConcurrencyPolicy, EvictionOrder
from devices.concurrency_policy import ConfirmationRequired, choose_evictions, in_eviction_order
from sessions.models import Presence, PresenceEntry

NOW = 1_800_000_000
CLASSES = ("mobile", "tablet", "desktop", "other")


@st.composite
def presences(draw, *, with_legacy: bool = True) -> list[PresenceEntry]:
    """Live entries of one account: distinct sequence numbers (or none, from the previous release),
    and times drawn from a few seconds only, in no relation to the sequence (ties, skewed clocks)."""
    count = draw(st.integers(min_value=0, max_value=8))
    seqs = draw(st.lists(st.integers(min_value=1, max_value=50), min_size=count, max_size=count, unique=True))
    entries = []
    for index, seq in enumerate(seqs):
        legacy = with_legacy and draw(st.booleans())
        login = NOW + draw(st.integers(min_value=-2, max_value=2))
        entries.append(PresenceEntry(
            device_id=f"d{index}", session_id=f"s{index}", device_name=f"device {index}", login_epoch=login,
            last_seen_epoch=login + draw(st.integers(min_value=0, max_value=2)), expires_epoch=NOW + 3600,
            device_class=draw(st.sampled_from(CLASSES)), login_seq=None if legacy else seq))
    return entries


def _shuffled(entries: list[PresenceEntry], seed: int) -> list[PresenceEntry]:
    copy = list(entries)
    random.Random(seed).shuffle(copy)
    return copy


@given(presences(), st.sampled_from(list(EvictionOrder)), st.integers())
def test_the_order_is_a_total_order_whatever_order_the_entries_come_in(entries, order, seed):
    ordered = in_eviction_order(entries, order)
    assert sorted(e.device_id for e in ordered) == sorted(e.device_id for e in entries)
    assert in_eviction_order(_shuffled(entries, seed), order) == ordered


@given(presences(with_legacy=False))
def test_oldest_login_follows_the_sequence_never_the_clock(entries):
    ordered = in_eviction_order(entries, EvictionOrder.OLDEST_LOGIN)
    assert [e.login_seq for e in ordered] == sorted(e.login_seq for e in entries)


@given(presences())
def test_entries_of_the_previous_release_come_first_in_time_order(entries):
    ordered = in_eviction_order(entries, EvictionOrder.OLDEST_LOGIN)
    legacy = [e for e in ordered if e.login_seq is None]
    assert ordered[:len(legacy)] == legacy
    assert [e.login_epoch for e in legacy] == sorted(e.login_epoch for e in legacy)


@given(presences(with_legacy=False))
def test_least_recently_used_breaks_its_ties_by_the_sequence(entries):
    ordered = in_eviction_order(entries, EvictionOrder.LEAST_RECENTLY_USED)
    keys = [(e.last_seen_epoch, e.login_seq) for e in ordered]
    assert keys == sorted(keys)


@settings(max_examples=200)
@given(presences(), st.sampled_from(list(EvictionOrder)), st.integers(min_value=1, max_value=4), st.integers())
def test_force_displaces_the_first_in_order_and_ask_lists_them_in_that_order(entries, order, limit, seed):
    others = _shuffled(entries, seed)
    evicted = choose_evictions(policy=ConcurrencyPolicy.FORCE, limit=limit, order=order, others=others,
                               force=False)
    assert evicted == in_eviction_order(entries, order)[:max(len(entries) - limit + 1, 0)]
    if evicted:
        with pytest.raises(ConfirmationRequired) as asked:
            choose_evictions(policy=ConcurrencyPolicy.ASK, limit=limit, order=order, others=others, force=False)
        assert asked.value.active == in_eviction_order(entries, order)
        confirmed = choose_evictions(policy=ConcurrencyPolicy.ASK, limit=limit, order=order, others=others,
                                     force=True)
        assert confirmed == asked.value.active[:len(evicted)]


@settings(max_examples=200)
@given(presences(), st.sampled_from(list(EvictionOrder)), st.sampled_from(CLASSES),
       st.integers(min_value=1, max_value=3), st.integers())
def test_a_full_class_displaces_its_own_first_in_order(entries, order, device_class, class_limit, seed):
    same = [e for e in entries if e.device_class == device_class]
    evicted = choose_evictions(policy=ConcurrencyPolicy.FORCE, limit=0, order=order, others=_shuffled(entries, seed),
                               force=False, device_class=device_class, class_limits={device_class: class_limit})
    assert evicted == in_eviction_order(same, order)[:max(len(same) - class_limit + 1, 0)]


@given(presences())
def test_the_next_login_comes_after_the_counter_and_every_entry(entries):
    counter = max([0, *(e.login_seq or 0 for e in entries)]) // 2  # a counter behind what its entries hold
    presence = Presence(user_uuid="u", version=3, entries={e.device_id: e for e in entries}, login_seq=counter)
    following = presence.next_login_seq()
    assert following > counter and all(following > (e.login_seq or 0) for e in entries)
