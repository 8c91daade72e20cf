"""Faults of the Kafka ingestion service: SIGKILL at random moments, a PostgreSQL restart.

The invariant: offsets are committed only after the warehouse transaction of
their batch, and replays are deduplicated by event_id (rejects by origin), so
whatever happens the landed set equals the produced set — nothing lost, nothing
twice — and the service recovers by itself.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ingestion.demo.broker import free_port
from ingestion.demo.generator import GenerationSummary, generate
from ingestion.landing.validation import Event, utc_now, validate
from tests.integration import test_kafka_ingest as kit
from tests.integration.test_kafka_ingest import (
    json_lines,
    ok,
    pg_count,
    start_ingest,
    stop,
    vv,
    wait_for,
)

broker = kit.broker  # the module's broker and per-test topics (fixtures)
kafka_env = kit.kafka_env

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class Expected:
    summary: GenerationSummary
    ids: set[str]
    conflicts: set[tuple[str, bytes]]


def expected_of(path: Path, summary: GenerationSummary) -> Expected:
    """First-write-wins recomputed line by line (per customer, Kafka keeps file order)."""
    now = utc_now()
    winner: dict[str, bytes] = {}
    conflicts: set[tuple[str, bytes]] = set()
    with path.open("rb") as handle:
        for line in handle:
            result = validate(line.rstrip(b"\n"), now)
            if not isinstance(result, Event):
                continue
            if result.event_id not in winner:
                winner[result.event_id] = result.content_hash
            elif winner[result.event_id] != result.content_hash:
                conflicts.add((result.event_id, result.content_hash))
    assert len(winner) == summary.accepted
    return Expected(summary, set(winner), conflicts)


def assert_landed_exactly(url: str, expected: Expected) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT event_id FROM raw.events").fetchall()]
        conflicts = {
            (r[0], bytes(r[1]))
            for r in conn.execute("SELECT event_id, content_hash FROM raw.event_conflicts")
        }
        ledger = conn.execute("SELECT count(*) FROM raw.event_ids").fetchone()
        rejected = conn.execute("SELECT count(*) FROM raw.rejected_events").fetchone()
    assert len(ids) == len(set(ids)), "an event landed twice"
    assert set(ids) == expected.ids, (
        f"lost {len(expected.ids - set(ids))}, invented {len(set(ids) - expected.ids)}"
    )
    assert ledger == (expected.summary.accepted,)
    assert conflicts == expected.conflicts
    assert rejected == (expected.summary.invalid,)


def test_sigkill_at_random_moments_loses_nothing_and_lands_nothing_twice(
    pg_url: str, tmp_path: Path, kafka_env: dict[str, str]
):
    summary = generate(tmp_path / "gen", events=50_000, seed=13)
    expected = expected_of(summary.events_path, summary)
    ok(vv(pg_url, kafka_env, "events", "produce", str(summary.events_path)))
    rng = random.Random(7)
    log = tmp_path / "ingest.log"
    kills = []
    for _ in range(5):
        before = max(0, pg_count(pg_url, "SELECT count(*) FROM raw.ingest_batches"))
        target = before + rng.randint(1, 3)
        proc = start_ingest(pg_url, kafka_env, log, "--metrics-port", "0", "--batch-size", "1500")
        wait_for(
            lambda t=target, p=proc: p.poll() is not None
            or pg_count(pg_url, "SELECT count(*) FROM raw.ingest_batches") >= t,
            60, "a committed batch", interval=0.01,
        )  # fmt: skip
        time.sleep(rng.uniform(0, 0.15))  # land anywhere: polling, validating, mid-COPY, commit
        assert proc.poll() is None, "the consumer ended by itself: " + log.read_text()[-1500:]
        stop(proc, signal.SIGKILL)
        kills.append(pg_count(pg_url, "SELECT count(*) FROM raw.event_ids"))
    print("landed ids at each kill:", kills)
    assert kills[-1] < summary.accepted, f"all landed before the last kill: {kills}"
    final = ok(vv(pg_url, kafka_env, "ingest", "run", "--until-idle", "--metrics-port", "0"))
    counts = final.last_json
    assert counts["accepted"] == summary.accepted - kills[-1]
    assert_landed_exactly(pg_url, expected)


@pytest.fixture
def scratch_pg() -> Iterator[tuple[str, Path]]:
    """A throw-away PostgreSQL cluster this test may stop and start (never the machine's)."""
    base = Path(tempfile.mkdtemp(prefix="vv-pg-"))
    data = base / "data"
    shutil.chown(base, "postgres")
    port = free_port()

    def as_postgres(cmd: str) -> None:
        subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True, timeout=120)

    as_postgres(f"{PG_BIN}/initdb -D {data} --auth=trust")
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = f"{PG_BIN}/pg_ctl -D {data} -o '{opts}' -l {base}/pg.log -w start"
    as_postgres(start)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", base
    finally:
        subprocess.run(
            ["su", "postgres", "-c", f"{PG_BIN}/pg_ctl -D {data} -m immediate -w stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_restart_mid_load_the_consumer_resumes_by_itself(
    scratch_pg: tuple[str, Path], tmp_path: Path, kafka_env: dict[str, str]
):
    url, base = scratch_pg
    data = base / "data"
    summary = generate(tmp_path / "gen", events=40_000, seed=17)
    expected = expected_of(summary.events_path, summary)
    lines = summary.events_path.read_bytes().splitlines(keepends=True)
    halves = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    halves[0].write_bytes(b"".join(lines[:20_000]))
    halves[1].write_bytes(b"".join(lines[20_000:]))
    ok(vv(url, kafka_env, "events", "produce", str(halves[0])))
    log = tmp_path / "ingest.log"
    proc = start_ingest(url, kafka_env, log, "--metrics-port", "0", "--batch-size", "1500")
    try:
        wait_for(lambda: pg_count(url, "SELECT count(*) FROM raw.ingest_batches") >= 2,
                 60, "two committed batches", interval=0.01)  # fmt: skip
        subprocess.run(
            ["su", "postgres", "-c", f"{PG_BIN}/pg_ctl -D {data} -m fast -w stop"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        ok(vv(url, kafka_env, "events", "produce", str(halves[1])))  # more while it is down
        time.sleep(2)
        opts = f"-p {url.split(':')[-1].split('/')[0]} -k {base} -c listen_addresses=127.0.0.1"
        subprocess.run(
            ["su", "postgres", "-c",
             f"{PG_BIN}/pg_ctl -D {data} -o '{opts} -c fsync=off' -l {base}/pg.log -w start"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_for(lambda: pg_count(url, "SELECT count(*) FROM raw.event_ids") == summary.accepted,
                 120, "every event landed after the restart")  # fmt: skip
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()[-2000:]
    retries = [e for e in json_lines(log.read_text()) if e["msg"].endswith("failed, retrying")]
    assert retries, "the consumer never saw the warehouse down"
    assert max(e["retry_in_s"] for e in retries) <= 10
    assert_landed_exactly(url, expected)
