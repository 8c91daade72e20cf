"""The sink contract: one batch in, one transaction, counts out.

This module owns every type a sink consumes or produces, so the sink
implementations import only this (never the batch assembly that feeds them),
and batch assembly reaches an implementation only through `EventSink.encode`,
handed to it by whoever chose the sink (see sinks/backends.py).

Both implementations follow the same contract, which is what makes a crash at
any moment safe and a replay harmless:
- everything a batch writes (events, conflicts, rejects, the batch record)
  commits together or not at all;
- the first landed occurrence of an event_id wins; later equal ones count as
  duplicates, later different ones as conflicts (kept in raw.event_conflicts);
- rejects are keyed by (origin, payload hash), so replaying a file or a Kafka
  range stores nothing twice.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from ingestion.warehouse import WarehouseConfig

# The validated events of a batch, in input order: what both sinks encode from
# (ValidatedEvents.events has these columns, then `origin` and `is_first`).
EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("metric", pa.string()),
        ("event_ts", pa.timestamp("us")),  # naive UTC
        ("quantity_text", pa.string()),  # exact plain decimal
        ("quantity_int", pa.int64()),  # its integer part ...
        ("quantity_frac9", pa.int32()),  # ... and its 9 fractional digits
        ("properties", pa.string()),
        ("properties_text", pa.string()),
        ("properties_num", pa.string()),
        ("content_hash", pa.binary()),
    ]
)


@dataclass(frozen=True, slots=True)
class RejectRow:
    """A rejected message as it is kept (raw.rejected_events, the dead-letter topic)."""

    origin: str
    payload: bytes  # the message as received, or only its first bytes (see original_bytes)
    rule: str
    detail: str
    # the message's size when `payload` is only its start (a message over the size limit)
    original_bytes: int | None = None

    @property
    def payload_hash(self) -> str:
        return hashlib.blake2b(self.payload, digest_size=16).hexdigest()


@dataclass
class Counts:
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.rejected += other.rejected
        return self

    @property
    def total(self) -> int:
        return self.accepted + self.duplicates + self.conflicts + self.rejected

    def as_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
        }


class ValidatedEvents(Protocol):
    """What an encoder reads of a validated batch (batch.ValidatedBatch is one).

    `events` holds EVENT_SCHEMA + origin + is_first, in input order; `is_first`
    marks the first occurrence of each id *in this batch*.
    """

    @property
    def events(self) -> pa.Table: ...

    @property
    def batch_id(self) -> str: ...

    @property
    def landing_time(self) -> datetime: ...


# A sink's encoder: validated events to the sink's wire format (PreparedBatch.payload).
# It is handed to worker processes, so it is a module-level function (pickled by name).
Encoder = Callable[[ValidatedEvents], object]


@dataclass
class PreparedBatch:
    """A validated batch in the sink's wire format: small to pickle, cheap to write."""

    batch_id: str
    source: str
    landing_time: datetime
    n_events: int
    has_repeats: bool
    months: set[tuple[int, int]]
    rejects: list[RejectRow]
    # PostgreSQL: PostgresPayload (binary COPY); DuckDB: a pyarrow Table; None when n_events is 0
    payload: object


class EventSink(ABC):
    """Writes validated batches into the warehouse's raw schema."""

    @abstractmethod
    def __init__(self, config: WarehouseConfig) -> None:
        """Connect to the configured warehouse (sinks/backends.py picks the class)."""

    @staticmethod
    @abstractmethod
    def encode(batch: ValidatedEvents) -> object:
        """This sink's Encoder: the payload its `write` takes (runs in a worker process)."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the raw schema if it is missing (idempotent)."""

    @abstractmethod
    def write(self, batch: PreparedBatch) -> Counts:
        """Land one batch atomically and return what happened to its messages."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
