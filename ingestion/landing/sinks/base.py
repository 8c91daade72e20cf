"""The sink interface: one batch in, one transaction, counts out.

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

from abc import ABC, abstractmethod

from ingestion.landing.batch import Counts, PreparedBatch
from ingestion.warehouse import WarehouseConfig


class EventSink(ABC):
    """Writes validated batches into the warehouse's raw schema."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the raw schema if it is missing (idempotent)."""

    @abstractmethod
    def write(self, batch: PreparedBatch) -> Counts:
        """Land one batch atomically and return what happened to its messages."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """The wire format this sink takes from Batch.prepare: "postgres" | "duckdb"."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sink(config: WarehouseConfig) -> EventSink:
    """The sink for the configured backend, with the raw schema in place."""
    if config.kind == "duckdb":
        from ingestion.landing.sinks.duckdb import DuckDBSink

        sink: EventSink = DuckDBSink(config)
    else:
        from ingestion.landing.sinks.postgres import PostgresSink

        sink = PostgresSink(config)
    sink.ensure_schema()
    return sink
