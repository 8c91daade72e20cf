"""Batch assembly shared by every landing path (file load and Kafka consumer).

A batch is built in memory from raw messages, then written by a sink in one
warehouse transaction. Deduplication against what is already landed happens in
the sink (inside that transaction); here we only mark, for each event, whether
it is the first occurrence of its id *in this batch* — so the sink can stage
every occurrence and decide first-write-wins in SQL without sorting.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from ingestion.schemas import Event, Reject, utc_now, validate


@dataclass(frozen=True, slots=True)
class RejectRow:
    origin: str
    payload: bytes
    rule: str
    detail: str

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


@dataclass
class Batch:
    """Validated messages ready for one sink transaction."""

    source: str
    landing_time: datetime = field(default_factory=utc_now)
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    events: list[Event] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    is_first: list[bool] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, payload: bytes, origin: str) -> Event | Reject:
        result = validate(payload, self.landing_time)
        if isinstance(result, Reject):
            self.rejects.append(RejectRow(origin, payload, result.rule, result.detail))
            return result
        self.events.append(result)
        self.origins.append(origin)
        first = result.event_id not in self._seen
        if first:
            self._seen.add(result.event_id)
        self.is_first.append(first)
        return result

    def __len__(self) -> int:
        return len(self.events) + len(self.rejects)

    def months(self) -> set[tuple[int, int]]:
        """Calendar months the batch's events fall in (for on-demand partitions)."""
        return {(e.event_ts.year, e.event_ts.month) for e in self.events}

    def prepare(self, kind: str) -> PreparedBatch:
        """Encode for the sink of `kind` ("postgres" | "duckdb").

        Encoding is the costly part after validation, so it happens here, where
        a worker process can do it, and the sink only ships bytes.
        """
        if kind == "postgres":
            from ingestion.sinks.postgres import encode_stage

            payload: object = encode_stage(self)
        else:
            from ingestion.sinks.duckdb import encode_stage as encode_arrow

            payload = encode_arrow(self)
        return PreparedBatch(
            batch_id=self.batch_id,
            source=self.source,
            landing_time=self.landing_time,
            n_events=len(self.events),
            has_repeats=not all(self.is_first),
            months=self.months(),
            rejects=self.rejects,
            payload=payload,
        )


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
    payload: object  # PostgreSQL: binary COPY bytes; DuckDB: a pyarrow Table
