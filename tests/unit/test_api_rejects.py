"""The usage API's reject writer: requests hand their rejects over and go on; the rejects of the
requests that come while a write runs or is due go into the warehouse in one transaction
(opening DuckDB is what costs), each request its own batch; a failed write is logged with
how many rejects it held, and the writer goes on; `flush` (at shutdown) waits for them all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ingestion.api import rejects
from ingestion.api.rejects import RejectBatch, RejectWriter
from ingestion.landing.sinks import backends
from ingestion.landing.sinks.contract import RejectRow
from ingestion.warehouse import WarehouseError, fetch, resolve

LANDED = datetime(2026, 11, 5, 12)


def _batch(request: int, rejects_in_it: int) -> RejectBatch:
    rows = [RejectRow(f"api:k/r{request}#{i}", b"{}", "message.not_object", "not an object")
            for i in range(rejects_in_it)]  # fmt: skip
    return RejectBatch("api:k", rows, LANDED)


@pytest.fixture
def warehouse(tmp_path: Path) -> Any:
    config = resolve(f"duckdb:///{tmp_path}/warehouse.duckdb")
    with backends.open_sink(config):  # the raw tables, as the server makes them at start-up
        pass
    return config


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every transaction the writer opens, counted (each is a DuckDB instance opened)."""
    opened: list[Any] = []
    real = rejects.transaction

    @contextmanager
    def counted(config: Any) -> Iterator[Any]:
        opened.append(config)
        with real(config) as db:
            yield db

    monkeypatch.setattr(rejects, "transaction", counted)
    return opened


def test_concurrent_requests_share_one_transaction(warehouse: Any, opened: list[Any]) -> None:
    writer = RejectWriter(warehouse)

    async def requests() -> None:
        for n in range(8):
            writer.submit(_batch(n, n + 1))
        await writer.flush()

    asyncio.run(requests())
    assert len(opened) == 1  # before: one transaction, one DuckDB instance, per request
    assert fetch(warehouse, "SELECT count(*) FROM raw.rejected_events") == [(36,)]
    batches = fetch(warehouse, "SELECT source, accepted, rejected FROM raw.ingest_batches"
                               " ORDER BY rejected")  # fmt: skip
    assert batches == [("api:k", 0, n + 1) for n in range(8)]  # one batch per request


def test_requests_arriving_one_after_another_share_the_next_write(
    warehouse: Any, opened: list[Any]
) -> None:
    """Under a steady stream (one rejecting request every 20 ms) writes are spaced by the
    writer's interval, not one per request or two: before, 10 requests made 10 writes."""
    writer = RejectWriter(warehouse, min_interval=0.5)

    async def stream() -> None:
        for n in range(10):
            writer.submit(_batch(n, 1))
            await asyncio.sleep(0.02)
        await writer.flush()

    asyncio.run(stream())
    assert len(opened) == 2  # the first at once, the other nine gathered
    assert fetch(warehouse, "SELECT count(*) FROM raw.ingest_batches") == [(10,)]


def test_a_request_does_not_wait_for_the_warehouse(warehouse: Any) -> None:
    """submit returns at once; the rows are there once the writer is flushed."""
    writer = RejectWriter(warehouse)

    async def request() -> int:
        writer.submit(_batch(0, 2))
        written = fetch(warehouse, "SELECT count(*) FROM raw.rejected_events")[0][0]
        await writer.flush()
        return written

    assert asyncio.run(request()) == 0  # the request went on before the write
    assert fetch(warehouse, "SELECT count(*) FROM raw.rejected_events") == [(2,)]


def test_a_failed_write_is_logged_and_the_next_one_still_made(
    warehouse: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real, calls = rejects.record_rejects, []

    def refuse_first(config: Any, batches: list[RejectBatch]) -> None:
        calls.append(len(batches))
        if len(calls) == 1:
            raise WarehouseError("the warehouse is busy")
        real(config, batches)

    monkeypatch.setattr(rejects, "record_rejects", refuse_first)
    writer = RejectWriter(warehouse, min_interval=0.05)

    async def requests() -> None:
        writer.submit(_batch(0, 3))
        await writer.flush()
        writer.submit(_batch(1, 1))
        await writer.flush()

    with caplog.at_level("WARNING", logger="valueverse.api"):
        asyncio.run(requests())
    failed = [
        r for r in caplog.records if r.getMessage() == "rejects kept in the dead-letter topic only"
    ]
    assert [(r.rejects, "the warehouse is busy" in r.error) for r in failed] == [(3, True)]
    assert calls == [1, 1]
    assert fetch(warehouse, "SELECT origin FROM raw.rejected_events") == [("api:k/r1#0",)]
