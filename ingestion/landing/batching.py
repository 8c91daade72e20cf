"""Pure batching and commit policy of the Kafka consumer: no I/O, unit-tested.

Why a separate module: the hard part of a consumer is *when* to cut a batch,
*which* offsets a written batch allows to commit, and *how long* to wait before
retrying the warehouse. Keeping those decisions free of Kafka and SQL makes
them testable in microseconds (tests/unit/test_batching.py); consumer.py only
wires them to the real clients (arroyo's split between strategy and I/O).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True)
class BatchPolicy:
    """Cut a batch at `max_messages`, `max_bytes`, or `max_wait` seconds after its first message.

    Size bounds the transaction (memory, lock time); time bounds the latency of
    a quiet topic, so a trickle of events still lands within `max_wait`.
    """

    max_messages: int = 50_000
    max_bytes: int = 64 * 1024 * 1024
    max_wait: float = 1.0
    # Cut as soon as this many messages wait while the writer has nothing to do:
    # an idle writer is lost throughput and latency (a quiet topic's batch need
    # not wait max_wait), and under load the writer is busy, so batches still
    # grow to max_messages.
    eager_messages: int = 5_000

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1 or self.max_wait < 0:
            raise ValueError("batch limits must be positive")
        if self.eager_messages < 1:
            raise ValueError("eager_messages must be positive")


@dataclass
class OpenBatch:
    """The messages collected since the last cut: counts and the offsets they cover."""

    policy: BatchPolicy
    started: float | None = None  # monotonic time of the first message
    messages: int = 0
    size: int = 0
    next_offsets: dict[TopicPartitionKey, int] = field(default_factory=dict)

    def add(self, topic: str, partition: int, offset: int, n_bytes: int, now: float) -> None:
        self.add_many(topic, [partition], [offset], n_bytes, now)

    def add_many(
        self, topic: str, partitions: list[int], offsets: list[int], n_bytes: int, now: float
    ) -> None:
        """Add the messages of one poll (their partitions and offsets, their total size).

        Why per poll: the consumer loop is the one thread that feeds every
        worker, so it does no per-message dictionary work.
        """
        if not partitions:
            return
        if self.started is None:
            self.started = now
        self.messages += len(partitions)
        self.size += n_bytes
        parts, offs = np.asarray(partitions), np.asarray(offsets)
        for partition in np.unique(parts).tolist():
            key = (topic, partition)
            newest = int(offs[parts == partition].max())
            # Kafka delivers a partition in order, but keep the max to be safe on replays.
            self.next_offsets[key] = max(self.next_offsets.get(key, 0), newest + 1)

    def is_full(self) -> bool:
        return self.messages >= self.policy.max_messages or self.size >= self.policy.max_bytes

    def is_due(self, now: float, writer_idle: bool = False) -> bool:
        """Full, old enough that latency says write it now, or big enough to
        give an idle writer work."""
        if not self.messages:
            return False
        assert self.started is not None
        if writer_idle and self.messages >= self.policy.eager_messages:
            return True
        return self.is_full() or now - self.started >= self.policy.max_wait

    def time_left(self, now: float) -> float:
        """How long the next poll may block without making this batch late."""
        if self.started is None:
            return self.policy.max_wait
        return max(0.0, self.policy.max_wait - (now - self.started))

    def cut(self) -> dict[TopicPartitionKey, int]:
        """Close the batch: return the offsets to commit once it is written, and reset."""
        offsets = self.next_offsets
        self.started, self.messages, self.size, self.next_offsets = None, 0, 0, {}
        return offsets


def merge_offsets(
    committed: dict[TopicPartitionKey, int], written: dict[TopicPartitionKey, int]
) -> dict[TopicPartitionKey, int]:
    """Offsets to commit after `written` landed: never moves a partition backwards."""
    merged = dict(committed)
    for key, offset in written.items():
        merged[key] = max(merged.get(key, 0), offset)
    return merged


@dataclass
class Backoff:
    """Exponential back-off for an unavailable warehouse: initial, doubling, capped.

    The same batch is retried until it lands: skipping it would lose events,
    and committing past it would make the loss permanent.
    """

    initial: float = 0.2
    factor: float = 2.0
    cap: float = 10.0
    attempts: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class IdleTracker:
    """`--until-idle`: done when every assigned partition has reported its end.

    A partition leaves the "at end" set as soon as a message of it arrives, and
    re-enters it with the next end-of-partition event; an empty assignment is
    never idle (the group has not given us anything yet).
    """

    assigned: set[TopicPartitionKey] = field(default_factory=set)
    at_end: set[TopicPartitionKey] = field(default_factory=set)

    def assign(self, keys: list[TopicPartitionKey]) -> None:
        self.assigned |= set(keys)

    def revoke(self, keys: list[TopicPartitionKey]) -> None:
        self.assigned -= set(keys)
        self.at_end -= set(keys)

    def messages(self, topic: str, partitions: set[int]) -> None:
        """Messages of these partitions arrived (one poll's worth)."""
        self.at_end -= {(topic, p) for p in partitions}

    def end_of_partition(self, key: TopicPartitionKey) -> None:
        self.at_end.add(key)

    def idle(self) -> bool:
        return bool(self.assigned) and self.assigned <= self.at_end
