"""Benchmark: landing JSONL into PostgreSQL vs a raw binary COPY of the same rows.

Run by `make bench`. Prints figures and the ratio; asserts nothing (timings are
not tests). Both measurements run in the same process against the same server,
each into a fresh scratch database:
- end to end: `load_files` (read, validate, stage, dedup, conflicts, rejects)
  of the generated JSONL file, as `valueverse events load` does it;
- two baselines, both a binary COPY of the valid rows (same columns and types
  as raw.events) into an unindexed, unpartitioned table, the rows parsed before
  the clock starts:
  - client binary COPY: the rows as typed Python values, encoded by psycopg's
    `write_row` while the clock runs: what an ordinary client's binary COPY of
    the rows costs (TOOLCHAIN.md measured ~217k rows/s this way);
  - server-only COPY: the rows already encoded to COPY's binary format before
    the clock starts, so only the server's side is timed: the ceiling for any
    client.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid
from pathlib import Path

import psycopg

from ingestion.landing import raw_ddl
from ingestion.landing.batch import Batch
from ingestion.landing.files import iter_lines, load_files
from ingestion.landing.sinks import pgcopy
from ingestion.landing.sinks.postgres import PostgresSink, _event_fields
from ingestion.warehouse import resolve

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def scratch_db(admin_url: str) -> tuple[str, str]:
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


def drop_db(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def end_to_end(url: str, path: Path) -> tuple[float, int]:
    sink = PostgresSink(resolve(url))
    sink.ensure_schema()
    backend = sink.conn.execute("SELECT pg_backend_pid()").fetchone()
    sink.conn.commit()
    server = _ProcessCpu(backend[0] if backend else None)
    main_cpu, children = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    counts = load_files(sink, [path])
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    print(
        f"{'  where the CPU went':32s} server {server.used():.2f} s, writer process "
        f"{time.process_time() - main_cpu:.2f} s, validating workers {workers:.2f} s "
        f"({os.cpu_count()} cores)"
    )
    sink.close()
    return elapsed, counts.total


class _ProcessCpu:
    """CPU seconds a local process (the PostgreSQL backend) used since creation;
    nan when the server is not on this machine."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start = self._read()

    def _read(self) -> float:
        return proc_cpu(self.pid) if self.pid else float("nan")

    def used(self) -> float:
        return self._read() - self.start


def proc_cpu(pid: int, missing: float = float("nan")) -> float:
    """CPU seconds (user + system) a local process used so far; `missing` when it
    is not (or no longer) there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return missing
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_copy(url: str, path: Path) -> tuple[float, int]:
    """Only the server's side: the rows are parsed and encoded before the clock starts."""
    batch = Batch(source="bench")
    for number, payload in iter_lines(path):
        batch.add(payload, f"file:{path}:{number}")
    validated = batch.validate()
    body, _ = pgcopy.rows(_event_fields(validated.events, batch.batch_id, batch.landing_time))
    data = pgcopy.stream(body)
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE raw_copy ({raw_ddl.postgres_events_columns()})")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy("COPY raw_copy FROM STDIN (FORMAT BINARY)") as cp:
            for offset in range(0, len(data), 1 << 20):
                cp.write(data[offset : offset + (1 << 20)])
        conn.commit()
        return time.perf_counter() - start, validated.events.num_rows


def client_copy(url: str, path: Path) -> tuple[float, int]:
    """An ordinary client's binary COPY: typed rows in memory, encoded by psycopg on the clock."""
    from decimal import Decimal

    from psycopg.types.json import Jsonb

    batch = Batch(source="bench")
    for number, payload in iter_lines(path):
        batch.add(payload, f"file:{path}:{number}")
    events = batch.validate().events
    column = {name: events.column(name).to_pylist() for name in events.column_names}
    quantities = [
        Decimal(whole) + Decimal(frac).scaleb(-9)
        for whole, frac in zip(column["quantity_int"], column["quantity_frac9"], strict=True)
    ]
    as_is = str  # properties are rendered JSON text already

    rows = [
        (e, c, m, ts, q, Jsonb(pt, dumps=as_is), Jsonb(pn, dumps=as_is), h, o, batch.batch_id,
         batch.landing_time)
        for e, c, m, ts, q, pt, pn, h, o in zip(
            column["event_id"], column["customer_id"], column["metric"], column["event_ts"],
            quantities, column["properties_text"], column["properties_num"],
            column["content_hash"], column["origin"], strict=True)
    ]  # fmt: skip
    types = ["text", "text", "text", "timestamp", "numeric", "jsonb", "jsonb", "bytea", "text",
             "text", "timestamp"]  # fmt: skip
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE raw_copy ({raw_ddl.postgres_events_columns()})")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor().copy("COPY raw_copy FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(types)
            for row in rows:
                cp.write_row(row)
        conn.commit()
        return time.perf_counter() - start, len(rows)


CLIENT_COPY = "client binary COPY (baseline)"
SERVER_COPY = "server-only binary COPY"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("events", type=Path, help="JSONL file (make bench generates 1M)")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    results = {}
    for name, func in (
        (CLIENT_COPY, client_copy),
        (SERVER_COPY, raw_copy),
        ("events load end-to-end", end_to_end),
    ):
        db, url = scratch_db(args.admin_url)
        try:
            seconds, rows = func(url, args.events)
        finally:
            drop_db(args.admin_url, db)
        results[name] = rows / seconds
        print(f"{name:32s} {rows:>10,d} rows {seconds:8.2f} s {rows / seconds:>12,.0f} rows/s")
    landed = results["events load end-to-end"]
    print(f"{'ratio end-to-end / client COPY':32s} {landed / results[CLIENT_COPY]:.2f}"
          "  (goal >= 0.50)")  # fmt: skip
    print(f"{'ratio end-to-end / server-only':32s} {landed / results[SERVER_COPY]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
