"""The API's rejects in the warehouse, beside the dead-letter topic.

Why both: the dead-letter topic keeps the payloads for a person to replay, and the warehouse
is where the data-quality report counts rejects (raw.rejected_events and raw.ingest_batches,
as for every landing path). A request with rejects is recorded as one batch
(source `api:<key id>`) with 0 accepted: its valid events are landed, and counted, by the
ingest service from the usage topic. Keyed by (origin, payload hash) like every reject, so a
retried request is stored once.

Why the request does not wait for them: its 202 says what the broker holds, and the dead-letter
topic acknowledged every reject before it (nothing is lost there); the warehouse copy is for
counting. Waiting for it made the copy the request's latency: writes are spaced (below), so a
request with a reject waited up to a spacing more, and at 0.1% invalid events every batch of
1,000 has one: 8 connections sending batches of 1,000 got ~29k events/s with the server's
main thread half idle (measured, bench_api.py). A write that fails is logged with how many
rejects it held, which then are in the dead-letter topic only, as before; the writer is
flushed at shutdown, so only a killed server can leave its last second's rejects uncounted
(they stay in the dead-letter topic).

Why the rejects of many requests share one transaction, and writes are spaced
(`MIN_WRITE_INTERVAL`): opening the warehouse is the cost, not the rows. On DuckDB each open
makes a database instance, ~17-25 CPU-ms however small the file, ~50 ms with its commit
(measured; a whole 100-event request is ~2 ms), and one request in ten of 100 events has a
reject: writing each request's own was 60-70% of the server's CPU with batches of 100. A write
starts at least MIN_WRITE_INTERVAL after the one before: at most one a second whatever the
load (~5% of a core); an idle server writes at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import NamedTuple

from ingestion.landing.sinks.contract import RejectRow
from ingestion.warehouse import WarehouseConfig, transaction

log = logging.getLogger("valueverse.api")
MIN_WRITE_INTERVAL = 1.0  # seconds from the start of one write to the start of the next


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
        batch_rows.append((batch_id, batch.source, batch.landed_at, 0, 0, 0, len(batch.rows)))
    with transaction(config) as db:  # many rows to a statement (Session.insert_rows)
        db.insert_rows(
            "INSERT INTO raw.rejected_events (origin, payload_hash, raw_payload, rule, detail,"
            " batch_id, rejected_at)", rows, "ON CONFLICT (origin, payload_hash) DO NOTHING",
        )  # fmt: skip
        db.insert_rows(
            "INSERT INTO raw.ingest_batches (batch_id, source, landed_at, accepted, duplicates,"
            " conflicts, rejected)", batch_rows, "ON CONFLICT (batch_id) DO NOTHING",
        )  # fmt: skip


class RejectWriter:
    """Records rejects in the background, the rejects of many requests in one transaction (see
    the module): `submit` queues a request's and returns; while a write runs in a thread, and
    until `min_interval` after it started, what comes queues, and the next write takes it all.
    Only the event loop calls it."""

    def __init__(self, config: WarehouseConfig, min_interval: float = MIN_WRITE_INTERVAL) -> None:
        self.config = config
        self.min_interval = min_interval
        self._waiting: list[RejectBatch] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_write = float("-inf")  # the event loop's clock

    def submit(self, batch: RejectBatch) -> None:
        """Queue `batch` for the next write (started now when none is due)."""
        self._waiting.append(batch)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def flush(self) -> None:
        """Returns once everything submitted so far was written (or its failure logged)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

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
                    await loop.run_in_executor(None, record_rejects, self.config, taken)
                except Exception as exc:  # any failure: the writer goes on with the next
                    log.warning("rejects kept in the dead-letter topic only", extra={
                        "rejects": sum(len(batch.rows) for batch in taken),
                        "error": f"{type(exc).__name__}: {exc}",
                    })  # fmt: skip
        finally:
            self._writer = None
