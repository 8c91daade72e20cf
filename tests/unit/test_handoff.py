"""Shared-memory slots between a process and its forked workers (ingestion/landing/handoff.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ingestion.landing import handoff
from ingestion.landing.fastlane import Lines


def _describe(lines: Lines, scale: int) -> tuple[int, list[bytes], int]:
    """What a worker sees of its arguments, and its pid (to prove it ran elsewhere)."""
    return len(lines) * scale, list(lines), os.getpid()


@pytest.fixture
def slots():
    made = handoff.Slots(4, size=1 << 20)
    yield made
    made.close()


def test_an_object_comes_back_equal_and_is_a_copy(slots):
    array = np.arange(1000)
    parcel = slots.put(0, {"rows": array, "text": "é" * 10})
    assert parcel.length > 0 and parcel.inline is None
    first = slots.take(parcel)
    slots.put(0, "something else")  # the slot is reused at once
    assert first["text"] == "é" * 10
    assert np.array_equal(first["rows"], array)


def test_an_object_too_big_for_its_slot_travels_inline(slots):
    big = bytes(2 << 20)  # 2 MiB into a 1 MiB slot
    parcel = slots.put(1, big)
    assert parcel.length == 0 and parcel.inline is big
    assert slots.take(parcel) is big


def test_slots_are_handed_out_once_until_released(slots):
    taken = [slots.acquire(timeout=0) for _ in range(4)]
    assert sorted(taken) == [0, 1, 2, 3]
    assert slots.acquire(timeout=0.01) is None
    slots.release(2)
    assert slots.acquire(timeout=0) == 2


def test_forked_workers_read_arguments_and_write_results_through_the_slots():
    lines = Lines.of([b"one", b"", b"three"])
    pool, slots = handoff.fork_pool(1, 4)
    with pool:
        args = slots.put(0, (lines, 2))
        parcel = pool.submit(handoff.call, _describe, args, 1).result()
        assert parcel.slot == 1 and parcel.length > 0  # the result came back by slot
        count, seen, pid = slots.take(parcel)
        assert (count, seen) == (6, [b"one", b"", b"three"])
        assert pid != os.getpid()
        # small arguments through the pipe, the result through a slot
        parcel = pool.submit(handoff.call_into, _describe, 3, Lines.of([b"x"]), 5).result()
        assert parcel.slot == 3 and slots.take(parcel)[:2] == (5, [b"x"])
    slots.close()


def test_a_second_owner_in_the_same_process_keeps_its_own_slots():
    first = handoff.Slots(1, size=1 << 16)
    second = handoff.Slots(1, size=1 << 16)  # e.g. a second service with its own pool
    try:
        parcel = first.put(0, "first's")
        second.put(0, "second's")
        assert first.take(parcel) == "first's"
    finally:
        first.close()
        second.close()
