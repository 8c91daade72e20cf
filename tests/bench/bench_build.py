"""Benchmark: `valueverse build` on the generated sample, both backends.

Run by `make bench`. Prints, per backend: the full build time for the sample,
then the time of a rebuild after 1% more events landed (new event ids on the
same customers and days, so they change existing invoices), and the ratio.
With --ten-million it also times a full DuckDB build over 10M events.
Timings go through the real CLI (a fresh process each, as a scheduler runs it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import psycopg

from ingestion.generator import generate, sample_as_of

CLI = str(Path(sys.executable).parent / "valueverse")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def run(url: str, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [CLI, *args], env={**os.environ, "VALUEVERSE_WAREHOUSE": url},
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"valueverse {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def extra_events(sample: Path, share: float, out: Path) -> int:
    """The first `share` of the sample's valid lines again, under new event ids."""
    lines = sample.read_bytes().splitlines()
    wanted = int(len(lines) * share)
    written = []
    for line in lines:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("event_id"), str):
            continue
        doc["event_id"] = doc["event_id"] + "_late"
        written.append(orjson.dumps(doc))
        if len(written) >= wanted:
            break
    out.write_bytes(b"\n".join(written) + b"\n")
    return len(written)


def sample_dir(base: Path, events: int) -> Path:
    target = base / f"sample-{events}-42"
    if not (target / "events.jsonl").exists():
        generate(target, events=events, seed=42)
    return target


def bench_backend(name: str, url: str, sample: Path, work: Path) -> None:
    as_of = sample_as_of().isoformat()
    run(url, "catalog", "load", str(sample / "catalog.yml"))
    landed = run(url, "events", "load", str(sample / "events.jsonl"))
    full = run(url, "build", "--as-of", as_of)
    extra = work / f"extra-{name}.jsonl"
    n_extra = extra_events(sample / "events.jsonl", 0.01, extra)
    run(url, "events", "load", str(extra))
    incremental = run(url, "build", "--as-of", as_of)
    print(f"{name:9s} events load {landed:7.1f} s | full build {full:6.1f} s | "
          f"rebuild after +{n_extra:,} events (1%) {incremental:6.1f} s | "
          f"ratio {incremental / full:.2f} (goal <= 0.20)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(".data"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--ten-million", action="store_true")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    work = args.data / "bench"
    work.mkdir(parents=True, exist_ok=True)
    sample = sample_dir(args.data, args.events)
    print(f"build benchmark on {sample} ({args.events:,} generated events)")

    duck = work / f"build-{uuid.uuid4().hex[:6]}.duckdb"
    try:
        bench_backend("duckdb", f"duckdb://{duck.resolve()}", sample, work)
    finally:
        duck.unlink(missing_ok=True)

    name = "bench_build_" + uuid.uuid4().hex[:8]
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        bench_backend("postgres", args.admin_url.rsplit("/", 1)[0] + "/" + name, sample, work)
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    if args.ten_million:
        big = sample_dir(args.data, 10_000_000)
        duck = work / f"build10m-{uuid.uuid4().hex[:6]}.duckdb"
        url = f"duckdb://{duck.resolve()}"
        try:
            run(url, "catalog", "load", str(big / "catalog.yml"))
            landed = run(url, "events", "load", str(big / "events.jsonl"))
            full = run(url, "build", "--as-of", sample_as_of().isoformat())
            print(f"duckdb 10M events load {landed:7.1f} s | full build {full:6.1f} s "
                  "(goal < 60 s)")  # fmt: skip
        finally:
            duck.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
