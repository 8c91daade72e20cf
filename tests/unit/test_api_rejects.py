"""The usage API's reject writer: the rejects of requests waiting at the same time go into the
warehouse in one transaction (opening DuckDB is what costs), each request its own batch, and
no request returns before its rejects are committed or learns less than a failure."""

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
        await asyncio.gather(*(writer.record(_batch(n, n + 1)) for n in range(8)))

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
        async def later(n: int) -> None:
            await asyncio.sleep(0.02 * n)
            await writer.record(_batch(n, 1))

        await asyncio.gather(*(later(n) for n in range(10)))

    asyncio.run(stream())
    assert len(opened) == 2  # the first at once, the other nine gathered
    assert fetch(warehouse, "SELECT count(*) FROM raw.ingest_batches") == [(10,)]


def test_a_failed_write_reaches_every_request_that_waited_on_it(
    warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(config: Any, batches: list[RejectBatch]) -> None:
        raise WarehouseError("the warehouse is busy")

    monkeypatch.setattr(rejects, "record_rejects", refuse)
    writer = RejectWriter(warehouse)

    async def requests() -> list[Any]:
        return await asyncio.gather(*(writer.record(_batch(n, 1)) for n in range(3)),
                                    return_exceptions=True)  # fmt: skip

    assert [type(got) for got in asyncio.run(requests())] == [WarehouseError] * 3
