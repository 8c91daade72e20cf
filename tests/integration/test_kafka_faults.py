"""Faults of the Kafka ingestion service: SIGKILL at random moments, a PostgreSQL restart, a
batch the warehouse refuses for good.

The invariant: offsets are committed only after the warehouse transaction of
their batch, and replays are deduplicated by event_id (rejects by origin), so
whatever happens the landed set equals the produced set — nothing lost, nothing
twice — and the service recovers by itself. What the warehouse refuses for good
is in the dead-letter topic instead, and the rest of the stream lands.
"""

from __future__ import annotations

import json
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
from confluent_kafka import Producer

from ingestion.demo.broker import free_port
from ingestion.demo.generator import GenerationSummary, generate
from ingestion.landing.sinks.backends import open_sink
from ingestion.landing.validation import Event, utc_now, validate
from ingestion.warehouse import resolve
from tests.integration.kafka_support import (
    broker_fixture,  # noqa: F401 (fixture)
    good_event,
    json_lines,
    kafka_env_fixture,  # noqa: F401 (fixture)
    ok,
    pg_count,
    read_topic,
    start_ingest,
    stop,
    vv,
    wait_for,
)

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


# A trigger on the id ledger that refuses one event, as a constraint, a conversion or a revoked
# privilege refuses a write: an error no retry of the batch can fix.
REFUSE_MARKER = """
CREATE FUNCTION raw.refuse_marker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id = 'evt_refused' THEN
        RAISE EXCEPTION 'event % refused by a test trigger', NEW.event_id
            USING ERRCODE = 'data_exception';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_marker BEFORE INSERT ON raw.event_ids
    FOR EACH ROW EXECUTE FUNCTION raw.refuse_marker();
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_batch_the_warehouse_refuses_for_good_is_dead_lettered_and_the_stream_goes_on(
    pg_url: str, tmp_path: Path, kafka_env: dict[str, str], workers: str
):
    """A write error no retry can fix (here a trigger raising a DataError for one event) used
    to stop the service with a traceback, and every restart replayed the same batch into it.
    Now the batch's messages go to the dead-letter topic and raw.rejected_events with rule
    warehouse.refused and a detail naming the error, the error is logged once, the offsets
    are committed, and the events after it land. A message of that batch that validation
    rejected keeps its own rule and is dead-lettered once. With worker processes (2) the
    messages are read back from shared memory; inline (0) from the batch itself."""
    with open_sink(resolve(pg_url)):
        pass  # the raw schema, for the trigger
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(REFUSE_MARKER)
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["VALUEVERSE_TOPIC"]
    refused = good_event(4).replace(b'"evt_4"', b'"evt_refused"')
    poison = b"{not json"
    # one partition, batches of 3: [0 1 2] [3 refused poison] [6 7 8] [9 10 11]
    sequence = [good_event(0), good_event(1), good_event(2), good_event(3), refused, poison]
    sequence += [good_event(n) for n in range(6, 12)]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in sequence:
        producer.produce(topic, value=value, partition=0)
    assert producer.flush(30) == 0
    env = {**kafka_env, "VALUEVERSE_INGEST_WORKERS": workers}
    run = vv(pg_url, env, "ingest", "run", "--until-idle", "--metrics-port", "0",
             "--batch-size", "3", timeout=120)  # fmt: skip
    assert ok(run).last_json["accepted"] + run.last_json["rejected"] == len(sequence)

    dead = read_topic(
        bootstrap, kafka_env["VALUEVERSE_DLQ_TOPIC"], expect=run.last_json["rejected"]
    )
    letters = {msg.value(): dict(msg.headers()) for msg in dead}
    assert len(dead) == len(letters) == run.last_json["rejected"]  # none twice
    assert letters[poison]["valueverse.rule"] == b"message.not_json"
    marker = letters[refused]
    assert marker["valueverse.rule"] == b"warehouse.refused"
    detail = marker["valueverse.detail"].decode()
    assert detail.startswith("the warehouse refused its batch: DataException (SQLSTATE 22000): ")
    assert "event evt_refused refused by a test trigger" in detail
    refused_batch = {v for v, h in letters.items() if h["valueverse.rule"] == b"warehouse.refused"}
    assert refused in refused_batch and len(refused_batch) <= 3  # its batch, no other

    with psycopg.connect(pg_url, autocommit=True) as conn:
        landed = {r[0] for r in conn.execute("SELECT event_id FROM raw.events")}
        rejects = conn.execute(
            "SELECT raw_payload, rule, detail FROM raw.rejected_events"
        ).fetchall()
    sent_ids = {json.loads(v)["event_id"] for v in sequence if v != poison}
    dead_ids = {json.loads(v)["event_id"] for v in refused_batch}
    assert landed == sent_ids - dead_ids  # the events after the refused batch landed
    assert "evt_11" in landed
    assert {(bytes(r[0]), r[1]) for r in rejects} == {
        (v, h["valueverse.rule"].decode()) for v, h in letters.items()
    }
    errors = [e for e in json_lines(run.stderr) if e["level"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["error"] == detail.removeprefix("the warehouse refused its batch: ")
    again = ok(vv(pg_url, env, "ingest", "run", "--until-idle", "--metrics-port", "0"))
    assert again.last_json == {"accepted": 0, "duplicates": 0, "conflicts": 0, "rejected": 0}
