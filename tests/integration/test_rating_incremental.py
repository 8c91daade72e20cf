"""Incremental `valueverse build` gives exactly what a fresh build gives, on both warehouses.

One warehouse is built step by step: a first build, then new events landed (late events in the
already built and invoiced period, a duplicate, events for new periods, values that change or do
not change a max / latest / unique_count, a `latest` tie broken by event_id, unbilled usage),
another build, then more late events and a build with a later as_of. Another warehouse gets
the same catalog and files and one build. Every mart must hold the same rows (but the landing
batch and rating run of each event), and the export must be byte-identical. A build with
--full-refresh (rating.build(full=True)) on the incremental warehouse must give them too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import nullcontext
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import SCENARIOS, query, run_cli, scratch_pg

CATALOG = SCENARIOS / "06_aggregations_filters" / "catalog.yml"
FIRST_AS_OF, LATER_AS_OF = "2026-11-01", "2026-12-01"

# Columns that tell how and when a row was landed or rated, not what it bills.
LANDING_COLUMNS = {"batch_id", "landed_at", "rating_run"}
MARTS = (
    "subscription_periods",
    "rated_usage",
    "rated_usage_tiers",
    "invoice_lines",
    "invoices",
    "invoice_line_events",
    "unbilled_usage",
)


def event(event_id: str, metric: str, ts: str, quantity: Any = None, **props: Any) -> dict:
    doc: dict[str, Any] = {
        "event_id": event_id,
        "customer_id": props.pop("customer", "cus_plat"),
        "metric": metric,
        "timestamp": ts,
    }
    if quantity is not None:
        doc["quantity"] = quantity
    if props:
        doc["properties"] = props
    return doc


FIRST = [
    event("e01", "active_users", "2026-10-02T00:00:00Z", user_id="u1"),
    event("e02", "active_users", "2026-10-03T00:00:00Z", user_id="u2"),
    event("e03", "active_users", "2026-10-04T00:00:00Z", user_id="u1"),
    event("e04", "storage_gb", "2026-10-07T00:00:00Z", "120.5"),
    event("e05", "storage_gb", "2026-10-08T00:00:00Z", "340.25"),
    event("e06", "seats", "2026-10-03T00:00:00Z", 10),
    event("e07", "seats", "2026-10-12T00:00:00Z", 30),
    event("e08", "compute_seconds", "2026-10-20T00:00:00Z", 36000, region="eu"),
]
SECOND = [
    FIRST[0],  # a duplicate: counted, not billed again
    event("e09", "active_users", "2026-10-05T00:00:00Z", user_id="u1"),  # value already seen
    event("e10", "active_users", "2026-10-06T00:00:00Z", user_id="u3"),  # a new value
    event("e11", "storage_gb", "2026-10-09T00:00:00Z", "99"),  # below the max
    event("e12", "seats", "2026-10-20T00:00:00Z", 14),  # the new latest
    event("e12b", "seats", "2026-10-20T00:00:00Z", 15),  # same time, greater id: wins the tie
    event("e13", "compute_seconds", "2026-10-20T00:00:00Z", 72000, region="us"),
    event("e14", "compute_seconds", "2026-10-20T00:00:00Z", 1800, region="eu"),
    event("e15", "compute_seconds", "2026-10-20T00:00:00Z", 5000, region="ap"),  # unbilled
    event("e16", "active_users", "2026-11-05T00:00:00Z", user_id="u1"),  # a new (open) period
    event("e17", "seats", "2026-11-06T00:00:00+02:00", 3),
    event("e18", "storage_gb", "2026-10-15T00:00:00Z", "1", customer="cus_unknown"),  # unbilled
]
THIRD = [
    event("e19", "storage_gb", "2026-10-30T23:59:59Z", "500"),  # late, raises October's max
    event("e20", "seats", "2026-10-12T00:00:00Z", 99),  # late, older than the latest: no change
    event("e21", "active_users", "2026-11-30T12:00:00Z", user_id="u9"),
    event("e22", "compute_seconds", "2026-12-02T00:00:00Z", 60, region="us"),  # after as_of
    event("e23", "active_users", "2026-10-31T23:00:00-05:00", user_id="u4"),  # UTC: November 1
]


def write(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def ok(url: str, *args: str, cwd: Path) -> str:
    result = run_cli(url, *args, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def marts(url: str) -> dict[str, list[tuple]]:
    """Every mart's rows (sorted, as text), without the landing/rating columns."""
    got = {}
    for table in MARTS:
        columns = [
            name
            for (name,) in query(
                url,
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts'"
                f" AND table_name = '{table}' ORDER BY ordinal_position",
            )
            if name not in LANDING_COLUMNS
        ]
        assert columns, table
        rows = query(url, f"SELECT {', '.join(columns)} FROM marts.{table}")
        got[table] = sorted(tuple("" if v is None else str(v) for v in row) for row in rows)
    return got


def export(url: str, tmp_path: Path, name: str) -> bytes:
    out = tmp_path / name
    ok(url, "invoices", "export", "--as-of", LATER_AS_OF, "--out", str(out), cwd=tmp_path)
    return out.read_bytes()


def full_refresh(url: str, as_of: str, cwd: Path) -> None:
    code = (
        "import sys; from datetime import date; from ingestion import warehouse; "
        "from ingestion.billing import dbt_runner as rating; "
        f"sys.exit(rating.build(warehouse.resolve({url!r}), date.fromisoformat({as_of!r}),"
        " full=True))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_incremental_build_equals_a_fresh_build(warehouse_url: str, tmp_path: Path) -> None:
    files = [
        write(tmp_path / f"{name}.jsonl", events)
        for name, events in (("first", FIRST), ("second", SECOND), ("third", THIRD))
    ]
    # the warehouse built step by step
    steps = warehouse_url
    ok(steps, "catalog", "load", str(CATALOG), cwd=tmp_path)
    ok(steps, "events", "load", str(files[0]), cwd=tmp_path)
    ok(steps, "build", "--as-of", FIRST_AS_OF, cwd=tmp_path)
    landed = json.loads(ok(steps, "events", "load", str(files[1]), cwd=tmp_path).splitlines()[-1])
    assert landed["duplicates"] == 1
    ok(steps, "build", "--as-of", FIRST_AS_OF, cwd=tmp_path)
    ok(steps, "events", "load", str(files[2]), cwd=tmp_path)
    ok(steps, "build", "--as-of", LATER_AS_OF, cwd=tmp_path)
    ok(steps, "build", "--as-of", LATER_AS_OF, cwd=tmp_path)  # nothing new: nothing changes

    # the same data, one build, on a fresh warehouse of the same kind
    fresh_warehouse = (
        nullcontext(f"duckdb:///{tmp_path}/fresh.duckdb")
        if steps.startswith("duckdb:")
        else scratch_pg()
    )
    with fresh_warehouse as fresh:
        ok(fresh, "catalog", "load", str(CATALOG), cwd=tmp_path)
        for path in files:
            ok(fresh, "events", "load", str(path), cwd=tmp_path)
        ok(fresh, "build", "--as-of", LATER_AS_OF, cwd=tmp_path)
        expected = marts(fresh)
        fresh_export = export(fresh, tmp_path, "fresh.csv")

    assert marts(steps) == expected
    assert export(steps, tmp_path, "steps.csv") == fresh_export
    # what the late events did to the invoiced October, and the periods they opened
    october = dict(
        query(
            steps,
            "SELECT metric_code, quantity FROM marts.rated_usage"
            " WHERE period_start = DATE '2026-10-01' AND charge_index <= 3",
        )
    )
    assert {k: Decimal(v) for k, v in october.items()} == {
        "active_users": 3,  # u1 u2 u3 (u4 is on November 1 in UTC)
        "storage_gb": 500,
        "seats": 15,
    }
    assert len(expected["subscription_periods"]) == 3  # October, November, December (open)

    full_refresh(steps, LATER_AS_OF, tmp_path)
    assert marts(steps) == expected


def test_a_failed_test_fails_again_until_fixed(warehouse_url: str, tmp_path: Path) -> None:
    """The event-sized tests read only what is new since the last verified build: a row that
    made a build fail is read again by the next build (a failed build verifies nothing)."""
    url = warehouse_url
    ok(url, "catalog", "load", str(CATALOG), cwd=tmp_path)
    ok(url, "events", "load", str(write(tmp_path / "first.jsonl", FIRST)), cwd=tmp_path)
    ok(url, "build", "--as-of", FIRST_AS_OF, cwd=tmp_path)
    # an event without its landing batch: rating never sees it, the tests must
    columns = (
        "event_id, customer_id, metric, event_ts, quantity, properties_text, properties_num,"
        " content_hash, origin"
    )
    statement = (
        f"INSERT INTO raw.events ({columns}, batch_id, landed_at)"
        f" SELECT event_id || '_orphan', {columns.split(', ', 1)[1]}, 'no_such_batch',"
        " CAST('2099-01-01 00:00:00' AS TIMESTAMP) FROM raw.events WHERE event_id = 'e01'"
    )
    execute(url, statement)
    for _ in range(2):
        failed = run_cli(url, "build", "--as-of", FIRST_AS_OF, cwd=tmp_path)
        assert failed.returncode == 1
        assert "assert_new_events_belong_to_a_batch" in failed.stderr
        assert "reconcile_every_event_billed_or_unbilled" in failed.stderr
    execute(url, "DELETE FROM raw.events WHERE batch_id = 'no_such_batch'")
    ok(url, "build", "--as-of", FIRST_AS_OF, cwd=tmp_path)


def execute(url: str, statement: str) -> None:
    if url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url[len("duckdb://") :])
        try:
            con.execute(statement)
        finally:
            con.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)
