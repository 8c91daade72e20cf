"""The sink implementations by warehouse kind: the one module that knows them all.

Callers that choose a sink (the CLI, the Kafka consumer, the build's raw-schema
step) come here; everything else in landing works against sinks/contract.py.
"""

from __future__ import annotations

from ingestion.landing.sinks.contract import Encoder, EventSink
from ingestion.landing.sinks.duckdb import DuckDBSink
from ingestion.landing.sinks.postgres import PostgresSink
from ingestion.warehouse import WarehouseConfig

_SINKS: dict[str, type[EventSink]] = {"duckdb": DuckDBSink, "postgres": PostgresSink}


def encoder(config: WarehouseConfig) -> Encoder:
    """The encoder of the configured backend's sink, without opening it (so worker
    processes can be forked before any database connection exists)."""
    return _SINKS[config.kind].encode


def open_sink(config: WarehouseConfig) -> EventSink:
    """The sink for the configured backend, with the raw schema in place."""
    sink = _SINKS[config.kind](config)
    sink.ensure_schema()
    return sink
