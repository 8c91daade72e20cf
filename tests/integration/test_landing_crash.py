"""Crash safety of `valueverse events load`: SIGKILL mid-load, then re-run.

A batch is one transaction (sinks/contract.py), batches commit in file order
(files.py), so after a kill at any moment the warehouse must hold whole batches
only — a prefix of the file — and re-running the same load must finish the job
with no event lost and none landed twice (spec: "loading the same events twice
adds only duplicates").

The load runs as its own process group (start_new_session) and the whole group
is killed, worker processes included. On PostgreSQL the kill comes as soon as
raw.ingest_batches shows a committed batch. A DuckDB file cannot be opened while
the writer holds it, so there the kill comes once the write-ahead log has grown
by about two batches (DuckDB appends a transaction to the WAL when it commits),
and everything is verified afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ingestion.demo.generator import GenerationSummary, generate
from ingestion.landing.files import INLINE_BELOW_BYTES
from ingestion.landing.validation import Event, utc_now, validate
from tests.conftest import CLI, query, run_cli

N_EVENTS = 120_000
SEED = 11
BATCH = 5_000
N_BATCHES = N_EVENTS // BATCH  # every line is non-blank
DUCKDB_WAL_TRIGGER = 2_500_000  # bytes: each committed 5000-event batch adds ~1.1 MB


@dataclass(frozen=True)
class Reference:
    """What landing the file must produce, recomputed line by line (first write wins)."""

    path: Path
    summary: GenerationSummary
    first_line: dict[str, int]  # event_id -> line of its first valid occurrence
    winner_hash: dict[str, bytes]
    conflicts_by_line: list[tuple[int, str, bytes]]  # (line, event_id, content hash)

    def ids_up_to(self, line: int) -> set[str]:
        return {eid for eid, first in self.first_line.items() if first <= line}

    def conflicts_up_to(self, line: int) -> set[tuple[str, bytes]]:
        return {(eid, h) for n, eid, h in self.conflicts_by_line if n <= line}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    out = tmp_path_factory.mktemp("crash")
    summary = generate(out, events=N_EVENTS, seed=SEED)
    path = out / "BIG.jsonl"
    summary.events_path.rename(path)
    assert path.stat().st_size >= INLINE_BELOW_BYTES  # the worker-process path
    now = utc_now()
    first_line: dict[str, int] = {}
    winner: dict[str, bytes] = {}
    conflicts: list[tuple[int, str, bytes]] = []
    rejected = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            result = validate(line.rstrip(b"\n"), now)
            if not isinstance(result, Event):
                rejected += 1
            elif result.event_id not in winner:
                first_line[result.event_id] = number
                winner[result.event_id] = result.content_hash
            elif winner[result.event_id] != result.content_hash:
                conflicts.append((number, result.event_id, result.content_hash))
    # the generator's own bookkeeping agrees with the recount
    assert len(first_line) == summary.accepted
    assert rejected == summary.invalid
    assert len(conflicts) == summary.conflicts
    return Reference(path, summary, first_line, winner, conflicts)


# --------------------------------------------------------------------------- warehouse access


def pg_committed_batches(url: str) -> int:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM raw.ingest_batches").fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0


# --------------------------------------------------------------------------- the kill


def live_group_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that are still running (zombies excluded)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            alive.append(int(entry.name))
    return alive


def start_load(url: str, path: Path, log_dir: Path, workers: str) -> subprocess.Popen:
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": url, "VALUEVERSE_LOAD_WORKERS": workers}
    with (
        (log_dir / "killed.stdout").open("wb") as out,
        (log_dir / "killed.stderr").open("wb") as err,
    ):
        return subprocess.Popen(
            [CLI, "events", "load", str(path), "--batch-size", str(BATCH)],
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def kill_group(proc: subprocess.Popen) -> list[int]:
    """SIGKILL the load and every process it started; wait until none is left.

    Returns the processes the group had just before the kill.
    """
    members = live_group_members(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while (left := live_group_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], f"processes of the killed load still running: {left}"
    return members


def run_and_kill(url: str, path: Path, log_dir: Path, workers: str) -> tuple[list[int], str]:
    """Start the load and kill its process group once a batch has committed.

    Returns the group's processes at the kill and how the kill was triggered.
    """
    proc = start_load(url, path, log_dir, workers)
    members: list[int] = []
    started = time.monotonic()
    deadline = started + 120
    how = "never triggered"
    try:
        if url.startswith("duckdb://"):
            wal = Path(url[len("duckdb://") :] + ".wal")
            while time.monotonic() < deadline and proc.poll() is None:
                size = wal.stat().st_size if wal.exists() else 0
                if size > DUCKDB_WAL_TRIGGER:
                    how = f"WAL at {size} bytes"
                    break
                time.sleep(0.01)
        else:
            while time.monotonic() < deadline and proc.poll() is None:
                if (n := pg_committed_batches(url)) >= 1:
                    how = f"{n} batch(es) in raw.ingest_batches"
                    break
                time.sleep(0.005)
        how += f" after {time.monotonic() - started:.2f}s"
        assert proc.poll() is None, (
            f"the load ended (exit {proc.returncode}) before it could be killed ({how}): "
            + (log_dir / "killed.stderr").read_text()
        )
    finally:
        if proc.poll() is None:
            members = kill_group(proc)
    return members, how


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("workers", ["2", "1"], ids=["worker_processes", "inline"])
def test_sigkill_leaves_whole_batches_and_rerun_completes(
    warehouse_url: str, tmp_path: Path, reference: Reference, workers: str
):
    ref, summary = reference, reference.summary
    members, how = run_and_kill(warehouse_url, ref.path, tmp_path, workers)
    # the worker-process path really had children to kill (main + 2 workers)
    assert len(members) == (3 if workers == "2" else 1), members

    # --- after the kill: whole batches only, and they are a prefix of the file
    batches = {
        r[0]: r[1:]
        for r in query(
            warehouse_url,
            "SELECT batch_id, accepted, duplicates, conflicts, rejected FROM raw.ingest_batches",
        )
    }
    committed = len(batches)
    assert 1 <= committed < N_BATCHES, f"{committed} of {N_BATCHES} batches (kill: {how})"
    accepted_before = sum(b[0] for b in batches.values())
    n_events = query(warehouse_url, "SELECT count(*), count(DISTINCT event_id) FROM raw.events")[0]
    assert n_events == (accepted_before, accepted_before)
    per_batch = dict(query(warehouse_url, "SELECT batch_id, count(*) FROM raw.events GROUP BY 1"))
    assert per_batch == {b: v[0] for b, v in batches.items() if v[0]}
    rejects_per_batch = dict(
        query(warehouse_url, "SELECT batch_id, count(*) FROM raw.rejected_events GROUP BY 1")
    )
    assert rejects_per_batch == {b: v[3] for b, v in batches.items() if v[3]}
    assert set(rejects_per_batch) <= set(batches)
    conflict_batches = {
        r[0] for r in query(warehouse_url, "SELECT batch_id FROM raw.event_conflicts")
    }
    assert conflict_batches <= set(batches)
    prefix = committed * BATCH
    landed = {r[0] for r in query(warehouse_url, "SELECT event_id FROM raw.events")}
    assert landed == ref.ids_up_to(prefix), "the committed batches are not the file's prefix"
    if not warehouse_url.startswith("duckdb://"):
        ledger = {r[0] for r in query(warehouse_url, "SELECT event_id FROM raw.event_ids")}
        assert ledger == landed, "raw.event_ids claims ids whose events are not in raw.events"

    # --- re-run to completion
    rerun = run_cli(warehouse_url, "events", "load", str(ref.path), "--batch-size", str(BATCH))
    assert rerun.returncode == 0, rerun.stderr
    second = rerun.last_json
    assert second["accepted"] + accepted_before == summary.accepted
    assert second == {
        "accepted": summary.accepted - accepted_before,
        "duplicates": summary.duplicates + accepted_before,
        "conflicts": summary.conflicts,
        "rejected": summary.invalid,
    }

    final = query(warehouse_url, "SELECT event_id, content_hash FROM raw.events")
    ids = Counter(r[0] for r in final)
    assert len(final) == summary.accepted
    assert [eid for eid, n in ids.items() if n > 1] == [], "event_ids landed twice"
    assert set(ids) == set(ref.first_line), "events lost or invented"
    assert {r[0]: bytes(r[1]) for r in final} == ref.winner_hash, "a later line won"
    stored_conflicts = {
        (r[0], bytes(r[1]))
        for r in query(warehouse_url, "SELECT event_id, content_hash FROM raw.event_conflicts")
    }
    assert stored_conflicts == ref.conflicts_up_to(N_EVENTS)
    assert query(warehouse_url, "SELECT count(*) FROM raw.rejected_events")[0][0] == summary.invalid
    totals = query(warehouse_url, "SELECT count(*), sum(accepted) FROM raw.ingest_batches")[0]
    assert totals == (committed + N_BATCHES, summary.accepted)
    if not warehouse_url.startswith("duckdb://"):
        assert query(warehouse_url, "SELECT count(*) FROM raw.event_ids")[0][0] == summary.accepted
