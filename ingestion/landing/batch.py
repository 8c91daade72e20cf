"""Batch assembly shared by every landing path (file load and Kafka consumer).

A batch is built in memory from raw messages, then written by a sink in one
warehouse transaction. Deduplication against what is already landed happens in
the sink (inside that transaction); here we only mark, for each event, whether
it is the first occurrence of its id *in this batch* — so the sink can stage
every occurrence and decide first-write-wins in SQL without sorting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing.fastlane import Lines, close_connection, validate_many
from ingestion.landing.sinks.contract import EVENT_SCHEMA, Encoder, PreparedBatch, RejectRow
from ingestion.landing.validation import (
    KEPT_BYTES_OF_TOO_LARGE,
    MAX_MESSAGE_BYTES,
    Event,
    Reject,
    plain_decimal,
    utc_now,
    validate,
)


@dataclass
class Batch:
    """Raw messages collected for one sink transaction; validated in `prepare`.

    Validation is done for the whole batch at once (fastlane.validate_many,
    with schemas.validate for the lines it leaves), so `add` only collects.
    """

    source: str
    landing_time: datetime = field(default_factory=utc_now)
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    payloads: list[bytes] | Lines = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    _origin_column: pa.Array | None = field(default=None, repr=False)

    def add(self, payload: bytes, origin: str) -> None:
        assert self._origin_column is None, "a batch is filled by add() or extend(), not both"
        assert isinstance(self.payloads, list)
        self.payloads.append(payload)
        self.origins.append(origin)

    def extend(self, payloads: list[bytes] | Lines, origins: pa.Array) -> None:
        """Fill an empty batch at once; origins as an Arrow string column (built
        column-wise by the caller, e.g. a file path plus line numbers)."""
        assert not len(self.payloads), "extend() fills an empty batch"
        self.payloads = payloads
        self._origin_column = origins

    def _origins(self) -> pa.Array:
        if self._origin_column is not None:
            return self._origin_column
        return pa.array(self.origins, pa.string())

    def __len__(self) -> int:
        return len(self.payloads)

    def validate(self) -> ValidatedBatch:
        """Every message checked against section 1: events (columnar) and rejects."""
        fast = validate_many(self.payloads, self.landing_time)
        origin_column = self._origins()
        rejects: list[RejectRow] = []
        slow_rows: list[dict] = []
        for i in fast.slow:
            result = validate(self.payloads[i], self.landing_time)
            if isinstance(result, Reject):
                origin = origin_column[i].as_py()
                rejects.append(reject_row(origin, self.payloads[i], result))
            else:
                slow_rows.append(_event_row(i, result))
        events = fast.accepted if fast.accepted.num_rows else _INDEXED_SCHEMA.empty_table()
        if slow_rows:
            slow = pa.Table.from_pylist(slow_rows, schema=_INDEXED_SCHEMA)
            events = pa.concat_tables(
                [events.select(_INDEXED_SCHEMA.names).cast(_INDEXED_SCHEMA), slow]
            )
            events = events.sort_by("i")
        else:
            events = events.select(_INDEXED_SCHEMA.names).cast(_INDEXED_SCHEMA)
        origins = origin_column.take(events.column("i"))
        position = pa.array(np.arange(events.num_rows, dtype=np.int64))
        firsts = (
            pa.table({"event_id": events.column("event_id"), "position": position})
            .group_by("event_id", use_threads=False)
            .aggregate([("position", "min")])
            .column("position_min")
        )
        is_first = pc.is_in(position, value_set=firsts)
        table = events.drop_columns(["i"]).append_column("origin", origins)
        table = table.append_column("is_first", is_first)
        return ValidatedBatch(self, table, rejects)

    def prepare(self, encode: Encoder) -> PreparedBatch:
        """Validate, then encode with the sink's encoder (EventSink.encode)."""
        return self.validate().prepare(encode)


def reject_row(origin: str, payload: bytes, reject: Reject, size: int | None = None) -> RejectRow:
    """A reject as it is kept: a message over MAX_MESSAGE_BYTES keeps only its first
    KEPT_BYTES_OF_TOO_LARGE bytes and its size, so what one message costs to keep is bounded
    whatever its size. `size` is the message's when `payload` is already only its start (a
    file line too long to read whole)."""
    size = len(payload) if size is None else size
    if size <= MAX_MESSAGE_BYTES:
        return RejectRow(origin, payload, reject.rule, reject.detail)
    kept = payload[:KEPT_BYTES_OF_TOO_LARGE]
    return RejectRow(origin, kept, reject.rule, reject.detail, original_bytes=size)


_INDEXED_SCHEMA = pa.schema([("i", pa.int32()), *EVENT_SCHEMA])


def _event_row(index: int, event: Event) -> dict:
    """A slow-lane Event as a row of the batch table."""
    integer = int(event.quantity)
    fraction9 = int((event.quantity - integer).scaleb(9))
    return {
        "i": index,
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "metric": event.metric,
        "event_ts": event.event_ts,
        "quantity_text": plain_decimal(event.quantity),
        "quantity_int": integer,
        "quantity_frac9": fraction9,
        "properties": event.properties,
        "properties_text": event.properties_text,
        "properties_num": event.properties_num,
        "content_hash": event.content_hash,
    }


@dataclass
class ValidatedBatch:
    """A batch after validation: `events` holds EVENT_SCHEMA + origin + is_first.

    `is_first` marks the first occurrence of each id *in this batch*; the sink
    decides first-write-wins against what is already landed.
    """

    batch: Batch
    events: pa.Table
    rejects: list[RejectRow]

    def months(self) -> set[tuple[int, int]]:
        """Calendar months the batch's events fall in (for on-demand partitions)."""
        if not self.events.num_rows:
            return set()
        ts = self.events.column("event_ts")
        pairs = pa.table({"y": pc.year(ts), "m": pc.month(ts)}).group_by(["y", "m"]).aggregate([])
        return set(zip(pairs.column("y").to_pylist(), pairs.column("m").to_pylist(), strict=True))

    def as_events(self) -> list[Event]:
        """The events as `schemas.Event`s (what schemas.validate gives for each line)."""
        return [
            Event(r["event_id"], r["customer_id"], r["metric"], r["event_ts"],
                  Decimal(r["quantity_text"]), r["properties"], r["properties_text"],
                  r["properties_num"], r["content_hash"])
            for r in self.events.to_pylist()
        ]  # fmt: skip

    def newest(self) -> datetime | None:
        """The newest event time (for the consumer's freshness metric)."""
        if not self.events.num_rows:
            return None
        return pc.max(self.events.column("event_ts")).as_py()

    @property
    def batch_id(self) -> str:
        return self.batch.batch_id

    @property
    def landing_time(self) -> datetime:
        return self.batch.landing_time

    def prepare(self, encode: Encoder) -> PreparedBatch:
        """Encode with the sink's encoder (EventSink.encode).

        Encoding is the costly part after validation, so it happens here, where
        a worker process can do it, and the sink only ships bytes.
        """
        payload = encode(self)
        batch = self.batch
        is_first = self.events.column("is_first")
        return PreparedBatch(
            batch_id=batch.batch_id,
            source=batch.source,
            landing_time=batch.landing_time,
            n_events=self.events.num_rows,
            has_repeats=self.events.num_rows > 0 and not pc.all(is_first).as_py(),
            months=self.months(),
            rejects=self.rejects,
            payload=payload,
        )


def warm_up(encoders: Iterable[Encoder]) -> None:
    """Validate a small batch and encode it with each encoder once, then drop this
    thread's DuckDB (fastlane's).

    Why: the first batch a process validates costs ~0.3 s more than the next
    ones (Arrow kernels, regular expressions, DuckDB start). Called in the
    parent before worker processes are forked, it is paid once instead of
    once per worker; the DuckDB connection is closed first, because a
    database must not be shared across a fork (each worker opens its own).
    """
    lines = [
        b'{"event_id": "warm-%d", "customer_id": "c", "metric": "m", '
        b'"timestamp": "2026-01-01T00:00:00Z", "quantity": "1.5", "properties": {"k": %d}}'
        % (i, i % 7)
        for i in range(500)
    ]
    batch = Batch(source="warm-up")
    batch.extend(lines, pa.array([f"warm-up:{i}" for i in range(len(lines))], pa.string()))
    validated = batch.validate()
    for encode in encoders:
        validated.prepare(encode)
    close_connection()
