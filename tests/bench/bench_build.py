"""Benchmark: `valueverse build` on the generated sample, both backends.

Run by `make bench`. Prints, per backend: the full build time for the sample,
then the time of a rebuild after 1% more events landed (new event ids on the
same customers and days, so they change existing invoices), and the ratio.
With --ten-million it also times a full DuckDB build over 10M events.
Timings go through the real CLI (a fresh process each, as a scheduler runs it);
dbt's partial-parse cache is warmed first (`dbt parse` with the build's arguments),
so neither timed build pays for a first parse of the project. Below each headline,
the phases of each build: process start and CLI preparation, importing dbt, dbt's
own start (parse cache, manifest, adapter), and running the nodes; and the nodes
that took longest (both as `valueverse build` reports them on stderr).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import psycopg

from ingestion.demo.generator import generate, sample_as_of

CLI = str(Path(sys.executable).parent / "valueverse")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


_PHASES = re.compile(
    r"valueverse build: ([0-9.]+) s in-process \(prepare ([0-9.]+) s, import dbt ([0-9.]+) s, "
    r"dbt build ([0-9.]+) s of which running nodes ([0-9.]+) s"
)


class Timing:
    def __init__(self, seconds: float, stderr: str) -> None:
        self.seconds = seconds
        self.phases = ""
        self.slowest = ""
        found = _PHASES.search(stderr)
        if found:
            in_process, prepare, imported, dbt_build, nodes = map(float, found.groups())
            self.phases = (
                f"process start + prepare {seconds - in_process + prepare:.1f} s, "
                f"import dbt {imported:.1f} s, dbt start {dbt_build - nodes:.1f} s, "
                f"nodes {nodes:.1f} s ({_count_nodes(stderr)} nodes)"
            )
        slowest = re.search(r"; slowest: ([^;)]*)", stderr)
        if slowest:
            self.slowest = "slowest: " + slowest.group(1)


def _count_nodes(stderr: str) -> str:
    done = re.findall(r"Done\. PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+ NO-OP=\d+ TOTAL=(\d+)", stderr)
    return done[-1] if done else "?"


def run(url: str, *args: str) -> float:
    return run_timed(url, *args).seconds


def run_timed(url: str, *args: str) -> Timing:
    start = time.perf_counter()
    proc = subprocess.run(
        [CLI, *args], env={**os.environ, "VALUEVERSE_WAREHOUSE": url},
        capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"valueverse {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return Timing(seconds, proc.stderr)


def warm_parse_cache(url: str, as_of: str) -> None:
    """dbt parse with the build's arguments, in a process of its own (not timed)."""
    code = (
        "import sys; from datetime import date; from ingestion import warehouse; "
        "from ingestion.billing import dbt_runner as rating; "
        f"sys.exit(rating.parse(warehouse.resolve({url!r}), date.fromisoformat({as_of!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dbt parse failed:\n{proc.stderr[-3000:]}")


def report(label: str, timing: Timing) -> None:
    if timing.phases:
        print(f"    {label}: {timing.phases}")
    if timing.slowest:
        print(f"    {' ' * len(label)}  {timing.slowest}")


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
    warm_parse_cache(url, as_of)
    full = run_timed(url, "build", "--as-of", as_of)
    extra = work / f"extra-{name}.jsonl"
    n_extra = extra_events(sample / "events.jsonl", 0.01, extra)
    run(url, "events", "load", str(extra))
    incremental = run_timed(url, "build", "--as-of", as_of)
    print(f"{name:9s} events load {landed:7.1f} s | full build {full.seconds:6.1f} s | "
          f"rebuild after +{n_extra:,} events (1%) {incremental.seconds:6.1f} s | "
          f"ratio {incremental.seconds / full.seconds:.2f} (goal <= 0.20)")  # fmt: skip
    report("full build", full)
    report("rebuild   ", incremental)


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
            warm_parse_cache(url, sample_as_of().isoformat())
            full = run_timed(url, "build", "--as-of", sample_as_of().isoformat())
            print(f"duckdb 10M events load {landed:7.1f} s | full build {full.seconds:6.1f} s "
                  "(goal < 60 s)")  # fmt: skip
            report("full build", full)
        finally:
            duck.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
