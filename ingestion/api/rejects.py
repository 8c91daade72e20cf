"""The API's rejects in the warehouse, beside the dead-letter topic.

Why both: the dead-letter topic keeps the payloads for a person to replay, and the warehouse
is where the data-quality report counts rejects (raw.rejected_events and raw.ingest_batches,
as for every landing path). A request with rejects is recorded as one batch
(source `api:<key id>`) with 0 accepted: its valid events are landed, and counted, by the
ingest service from the usage topic. Keyed by (origin, payload hash) like every reject, so a
retried request is stored once.

Why the rejects of concurrent requests share one transaction (`RejectWriter`): opening the
warehouse is the cost, not the rows. On DuckDB each open makes a database instance, ~17-25
CPU-ms however small the file (measured; a whole 100-event request is ~2 ms), and at 0.1%
invalid events one request in ten of 100 events (every one of 1,000) has a reject: writing
each request's own was 60-70% of the server's CPU with batches of 100. A request still gets
its 202 only once its rejects are committed, as before.

Why writes are spaced (`MIN_WRITE_INTERVAL`): taking only the requests that queued during the
previous write still gave ~2 requests a transaction under load (a write is ~50 ms, and few
rejecting requests arrive in that time), so the rejects of 100-event batches still cost ~60%
of the server's CPU (bench_api.py on the demo's warehouse: 77 CPU-µs an event, 15.8k events/s).
A write starts at least MIN_WRITE_INTERVAL after the one before: at most 4 a second whatever
the load; an idle server writes at once, and a request with rejects waits at most that long.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import NamedTuple

from ingestion.landing.sinks.contract import RejectRow
from ingestion.warehouse import WarehouseConfig, transaction

MIN_WRITE_INTERVAL = 0.25  # seconds from the start of one write to the start of the next


class RejectBatch(NamedTuple):
    """One request's rejects: recorded as one batch of `source`."""

    source: str
    rows: list[RejectRow]
    landed_at: datetime


def record_rejects(config: WarehouseConfig, batches: list[RejectBatch]) -> None:
    """Every batch (one per request) in one transaction."""
    batches = [batch for batch in batches if batch.rows]
    if not batches:
        return
    rows, batch_rows = [], []
    for batch in batches:
        batch_id = uuid.uuid4().hex
        rows += [(r.origin, r.payload_hash, r.payload, r.rule, r.detail, batch_id,
                  batch.landed_at) for r in batch.rows]  # fmt: skip
        batch_rows.append((batch_id, batch.source, batch.landed_at, len(batch.rows)))
    with transaction(config) as db:
        db.executemany(
            "INSERT INTO raw.rejected_events (origin, payload_hash, raw_payload, rule, detail,"
            " batch_id, rejected_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (origin, payload_hash) DO NOTHING",
            rows,
        )
        db.executemany(
            "INSERT INTO raw.ingest_batches (batch_id, source, landed_at, accepted, duplicates,"
            " conflicts, rejected) VALUES (%s, %s, %s, 0, 0, 0, %s)"
            " ON CONFLICT (batch_id) DO NOTHING",
            batch_rows,
        )


class RejectWriter:
    """Records the rejects of requests that wait at the same time in one transaction (see the
    module): while a write runs in a thread, and until `min_interval` after it started, the
    requests that come queue, and the next write takes them all. Only the event loop calls
    it."""

    def __init__(self, config: WarehouseConfig, min_interval: float = MIN_WRITE_INTERVAL) -> None:
        self.config = config
        self.min_interval = min_interval
        self._waiting: list[tuple[RejectBatch, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_write = float("-inf")  # the event loop's clock

    async def record(self, batch: RejectBatch) -> None:
        """Returns once `batch` is committed; raises what the write raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append((batch, future))
        if self._writer is None:
            self._writer = loop.create_task(self._write())
        await future

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                pause = self._last_write + self.min_interval - loop.time()
                if pause > 0:  # gather what comes meanwhile into this write
                    await asyncio.sleep(pause)
                self._last_write = loop.time()
                taken, self._waiting = self._waiting, []
                try:
                    await loop.run_in_executor(None, record_rejects, self.config,
                                               [batch for batch, _ in taken])  # fmt: skip
                except Exception as exc:
                    for _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in taken:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._writer = None
