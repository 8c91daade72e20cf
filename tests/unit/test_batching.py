"""The consumer's pure policy: when to cut a batch, what to commit, how to back off."""

from __future__ import annotations

import pytest

from ingestion.landing.batching import Backoff, BatchPolicy, IdleTracker, OpenBatch, merge_offsets


def test_cut_by_count():
    batch = OpenBatch(BatchPolicy(max_messages=3, max_wait=60))
    for offset in range(2):
        batch.add("t", 0, offset, 10, now=0.0)
    assert not batch.is_full() and not batch.is_due(0.0)
    batch.add("t", 0, 2, 10, now=0.0)
    assert batch.is_full() and batch.is_due(0.0)


def test_cut_by_bytes():
    batch = OpenBatch(BatchPolicy(max_messages=1000, max_bytes=100, max_wait=60))
    batch.add("t", 0, 0, 60, now=0.0)
    assert not batch.is_full()
    batch.add("t", 0, 1, 40, now=0.0)
    assert batch.is_full()


def test_cut_by_time_counts_from_first_message():
    batch = OpenBatch(BatchPolicy(max_messages=1000, max_wait=1.0))
    assert not batch.is_due(100.0)  # empty: never due
    assert batch.time_left(100.0) == 1.0
    batch.add("t", 0, 0, 1, now=10.0)
    assert not batch.is_due(10.5)
    assert batch.time_left(10.25) == pytest.approx(0.75)
    batch.add("t", 0, 1, 1, now=10.9)
    assert batch.is_due(11.0)
    assert batch.time_left(12.0) == 0.0


def test_an_idle_writer_gets_a_batch_of_eager_messages_early():
    batch = OpenBatch(BatchPolicy(max_messages=1000, max_wait=60, eager_messages=3))
    batch.add_many("t", [0, 1], [0, 0], 2, now=0.0)
    assert not batch.is_due(0.0, writer_idle=True)  # 2 < 3: not worth a transaction yet
    batch.add("t", 0, 1, 1, now=0.0)
    assert batch.is_due(0.0, writer_idle=True)
    assert not batch.is_due(0.0, writer_idle=False)  # a busy writer: the batch keeps growing
    with pytest.raises(ValueError):
        BatchPolicy(eager_messages=0)


def test_cut_returns_next_offsets_per_partition_and_resets():
    batch = OpenBatch(BatchPolicy())
    batch.add("t", 0, 5, 1, now=0.0)
    batch.add("t", 1, 7, 1, now=0.0)
    batch.add("t", 0, 6, 1, now=0.0)
    batch.add("t", 0, 4, 1, now=0.0)  # a replayed older message never moves it back
    assert batch.cut() == {("t", 0): 7, ("t", 1): 8}
    assert batch.messages == 0 and batch.size == 0 and batch.started is None
    assert batch.cut() == {}


def test_merge_offsets_never_moves_backwards():
    merged = merge_offsets({("t", 0): 10, ("t", 1): 3}, {("t", 0): 8, ("t", 2): 1})
    assert merged == {("t", 0): 10, ("t", 1): 3, ("t", 2): 1}


def test_backoff_doubles_up_to_the_cap_and_resets():
    backoff = Backoff(initial=0.5, factor=2, cap=10)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_idle_needs_an_assignment_and_every_partition_at_end():
    idle = IdleTracker()
    assert not idle.idle()
    idle.assign([("t", 0), ("t", 1)])
    idle.end_of_partition(("t", 0))
    assert not idle.idle()
    idle.end_of_partition(("t", 1))
    assert idle.idle()
    idle.messages("t", {1})  # new data: no longer at its end
    assert not idle.idle()
    idle.end_of_partition(("t", 1))
    idle.revoke([("t", 0), ("t", 1)])
    assert not idle.idle()


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        BatchPolicy(max_messages=0)
    with pytest.raises(ValueError):
        BatchPolicy(max_wait=-1)
