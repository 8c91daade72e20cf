"""Benchmark: notification delivery and the outbox's cost on finalization.

Run by `make bench`. Prints figures; asserts nothing.
1. delivery throughput: `--notifications` outbox rows (invoice.finalized documents) delivered
   by `deliver()` (the code behind `valueverse webhooks deliver`) to one endpoint, a local
   threaded http.server answering 204 (the demo's `local_receiver`), until nothing is due;
   notifications/s, on a fresh DuckDB file (and on a scratch PostgreSQL database with
   `--admin-url`). Each delivery is one signed POST, one request in flight per endpoint, and
   one log row committed on its own.
2. outbox overhead on finalization: copies of the demo's warehouse (`--warehouse`, after
   `make demo`) with the invoices un-finalized again (DuckDB has no append-only guards), then
   `finalize()` as of the demo's date in each: as is (its notifications recorded in the
   finalize transaction), and with the outbox's `record_many` replaced by a no-op (finalization
   as it was before notifications); the best of two runs each, alternating.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from unittest import mock

import psycopg

from ingestion.billing import finalization, outbox
from ingestion.billing.outbox import record
from ingestion.demo.notifications import local_receiver
from ingestion.notifications.deliver import deliver
from ingestion.notifications.endpoints import add_endpoint
from ingestion.notifications.settings import SIGNING_KEY_ENV, DeliverySettings
from ingestion.notifications.store import ensure_notify_store
from ingestion.warehouse import connect, resolve, transaction


def throughput(url: str, count: int) -> tuple[float, int]:
    """(seconds, delivered) for `count` notifications to one local endpoint."""
    config = resolve(url)
    ensure_notify_store(config)
    with local_receiver(lambda headers, body: 204) as receiver_url:
        add_endpoint(config, receiver_url, "*", None)
        with transaction(config) as db:
            for n in range(count):
                number = f"VV-{n:06d}"
                record(db, "invoice.finalized", number,
                       {"invoice_number": number, "total": "12.3400"}, customer_id=f"c{n % 97}",
                       subject=number)  # fmt: skip
        settings = DeliverySettings(batch=10_000)
        started, delivered = time.perf_counter(), 0
        while True:
            run = deliver(config, settings=settings)
            delivered += run.delivered
            if run.delivered == 0:
                break
        return time.perf_counter() - started, delivered


def _no_outbox(db, changes, at=None):  # type: ignore[no-untyped-def]
    """finalize() as it was before notifications: nothing recorded."""
    return []


def finalize_overhead(demo: Path, folder: Path) -> tuple[float, float, int]:
    """(seconds without, seconds with the outbox, invoices finalized): the best of two runs
    each, alternating, on fresh copies of the demo's warehouse."""
    times: dict[bool, list[float]] = {False: [], True: []}
    finalized = 0
    for run, with_outbox in enumerate((False, True, False, True)):
        copy = folder / f"finalize-{run}.duckdb"
        shutil.copy(demo, copy)
        config = resolve(f"duckdb:///{copy}")
        with connect(config) as db:
            as_of: date = db.value("SELECT max(finalized_as_of) FROM billing.finalized_invoices")
            for table in ("payment_attempts", "dunning_events", "finalized_invoice_lines",
                          "finalized_invoices", "notifications"):  # fmt: skip
                db.execute(f"DELETE FROM billing.{table}")
            # the demo rebuilds its marts after finalizing, so they show its invoices finalized:
            # closed again, as they were when the demo's finalization read them
            db.execute("UPDATE marts.invoices SET status = 'closed' WHERE status = 'finalized'")
            db.execute("UPDATE marts.invoice_lines SET invoice_status = 'closed'"
                       " WHERE invoice_status = 'finalized'")  # fmt: skip
        started = time.perf_counter()
        if with_outbox:
            result = finalization.finalize(config, as_of)
        else:
            with mock.patch.object(outbox, "record_many", _no_outbox):
                result = finalization.finalize(config, as_of)
        times[with_outbox].append(time.perf_counter() - started)
        finalized = len(result.finalized)
        copy.unlink()
    return min(times[False]), min(times[True]), finalized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=2000)
    parser.add_argument("--warehouse", default=".data/valueverse.duckdb",
                        help="the demo's DuckDB warehouse (finalization overhead)")  # fmt: skip
    parser.add_argument("--admin-url", default=None, help="PostgreSQL admin URL (optional)")
    args = parser.parse_args()
    os.environ.setdefault(SIGNING_KEY_ENV, uuid.uuid4().hex + uuid.uuid4().hex)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seconds, done = throughput(f"duckdb:///{folder}/bench.duckdb", args.notifications)
        print(f"delivery, DuckDB: {done:,} notifications in {seconds:.2f} s = "
              f"{done / seconds:,.0f} notifications/s to a local receiver")  # fmt: skip
        if args.admin_url:
            name = "vvbench_" + uuid.uuid4().hex[:8]
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
                seconds, done = throughput(url, args.notifications)
                print(f"delivery, PostgreSQL: {done:,} notifications in {seconds:.2f} s = "
                      f"{done / seconds:,.0f} notifications/s to a local receiver")  # fmt: skip
            finally:
                with psycopg.connect(args.admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        demo = Path(args.warehouse)
        if not demo.exists():
            print(f"finalization overhead: run make demo first ({demo} does not exist)")
            return
        plain, with_outbox, invoices = finalize_overhead(demo, folder)
        if not invoices:
            print(f"finalization overhead: nothing to finalize in {demo} (not the demo's?)")
            return
        extra = with_outbox - plain
        print(f"finalization of the demo's {invoices:,} invoices: {plain:.2f} s without the "
              f"outbox, {with_outbox:.2f} s with it (its notifications recorded in the same "
              f"transaction): {with_outbox / plain:.2f} x, "
              f"{extra / max(invoices, 1) * 1000:+.2f} ms per invoice")  # fmt: skip


if __name__ == "__main__":
    main()
