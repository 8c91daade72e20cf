"""Finalization, data-quality and threshold notifications from the real state changes, on both
backends, on the catalog of tests/scenarios/16_late_usage_adjustments with thresholds added:

1. build as of Feb 4: January's usage of sub_a (1000 api) reaches the plan's usage threshold
   (1000) and exactly 20 % of its 50.00 minimum commitment: one alert each, none for February;
2. a failing critical quality run scoped to January: `quality.critical_failed`, and a finalize
   blocked for it notifies each blocked invoice once, however often it is rerun; a finalize that
   fails after numbering leaves no notification; once quality passes, January is finalized;
3. late January usage and more February usage, build as of Mar 4: January is finalized, so no
   alert for it; February crosses usage, commitment and sub_b2's spend threshold; finalizing
   February tells of the adjustments each February invoice carries;
4. March usage and late February usage, build as of Mar 20: March alerts afresh (its own usage
   only), February (finalized) never again, and evaluating once more records nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ingestion.billing import finalization, outbox
from ingestion.notifications.thresholds import evaluate_thresholds
from ingestion.warehouse import resolve
from tests.conftest import SCENARIOS, query, run_step
from tests.integration.notifications_support import notifications, of_type

SCENARIO = SCENARIOS / "16_late_usage_adjustments"
THRESHOLDS = {
    "pro": "  thresholds:\n  - {metric: api, quantity: 1000}\n  - {commitment_percent: 20}\n",
    "sub_b2": "  thresholds:\n  - {spend: '2.50'}\n",
}


def _catalog(tmp: Path) -> Path:
    text = (SCENARIO / "catalog.yml").read_text()
    text = text.replace("    unit_price: '0.01'\n", "    unit_price: '0.01'\n" + THRESHOLDS["pro"])
    text = text.replace("  start: '2026-02-01'\n", "  start: '2026-02-01'\n" + THRESHOLDS["sub_b2"])
    path = tmp / "catalog.yml"
    path.write_text(text)
    return path


def _events(tmp: Path, name: str, *events: tuple[str, str, str, int]) -> Path:
    path = tmp / name
    path.write_text("".join(
        json.dumps({"event_id": e, "customer_id": c, "metric": "api", "timestamp": t,
                    "quantity": q}) + "\n"
        for e, c, t, q in events
    ))  # fmt: skip
    return path


def _ok(url: str, tmp: Path, *args: str):
    result = run_step(url, *args, cwd=tmp)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result


def _quality_run(url: str, run_id: str, failing: bool) -> None:
    from ingestion.quality.checks import ResultRow
    from ingestion.quality.results import write_results

    observed = "1 invoice off" if failing else None
    row = ResultRow("invoice_lines", "invoice total equals the sum of its lines", "total",
                    critical=True, success=not failing, observed=observed,
                    scope_start=date(2026, 1, 1), scope_end=date(2026, 2, 1))  # fmt: skip
    write_results(resolve(url), run_id, datetime.now(UTC).replace(tzinfo=None), date(2026, 2, 4),
                  [row], int(failing), Path("/nonexistent/index.html"))  # fmt: skip


def _crossings(documents: list[dict]) -> set[tuple[str, str, str, str]]:
    return {
        (d["threshold_id"], d["subscription_id"], d["period_start"], d["value"])
        for d in of_type(documents, "usage.threshold_reached")
        + of_type(documents, "spend.threshold_reached")
    }


def test_notifications_from_builds_quality_and_finalization(
    built_warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tmp = built_warehouse_url, tmp_path
    _ok(url, tmp, "catalog", "load", str(_catalog(tmp)))
    _ok(url, tmp, "events", "load", str(SCENARIO / "events.jsonl"))

    # 1. thresholds reached in January, as of the build that computed them
    _ok(url, tmp, "build", "--as-of", "2026-02-04")
    [(built,)] = query(url, "SELECT max(finished_at) FROM analytics.valueverse_build_log")
    first = notifications(url)
    assert _crossings(first) == {
        ("plan:pro:usage:api:1000", "sub_a", "2026-01-01", "1000"),
        ("plan:pro:commitment:20", "sub_a", "2026-01-01", "20.00"),
    }
    [commitment] = of_type(first, "spend.threshold_reached")
    assert (commitment["spend"], commitment["commitment"], commitment["currency"]) == (
        "10.00", "50.00", "USD")  # fmt: skip
    assert commitment["computed_at"] == built.replace(tzinfo=UTC).isoformat()
    assert commitment["invoice_id"] == "sub_a/2026-01-01"

    # 2. quality blocks January: told once per run and once per block, however often rerun
    _quality_run(url, "run-failing", failing=True)
    config = resolve(url)
    for _ in range(2):
        assert len(finalization.finalize(config, date(2026, 2, 4)).blocked) == 2
    blocked = notifications(url)[len(first) :]
    assert sorted(d["type"] for d in blocked) == [
        "finalization.blocked", "finalization.blocked", "quality.critical_failed"]  # fmt: skip
    [failed] = of_type(blocked, "quality.critical_failed")
    assert failed["run_id"] == "run-failing" and failed["expectations"][0]["scope_start"] == (
        "2026-01-01")  # fmt: skip
    held = of_type(blocked, "finalization.blocked")
    assert {(b["invoice_id"], b["quality_run_id"]) for b in held} == {
        ("sub_a/2026-01-01", "run-failing"), ("sub_b1/2026-01-01", "run-failing")}  # fmt: skip
    assert (
        "data quality: invoice_lines" in of_type(blocked, "finalization.blocked")[0]["reasons"][0]
    )

    _quality_run(url, "run-passing", failing=False)
    real = outbox.record_many

    def crash_after_notifying(*args: object) -> list[str]:
        real(*args)  # type: ignore[arg-type]
        raise RuntimeError("the finalizer died before committing")

    monkeypatch.setattr(outbox, "record_many", crash_after_notifying)
    with pytest.raises(RuntimeError, match="died"):
        finalization.finalize(config, date(2026, 2, 4))
    monkeypatch.undo()
    assert len(notifications(url)) == len(first) + 3  # nothing from the rolled-back run
    assert len(finalization.finalize(config, date(2026, 2, 4)).finalized) == 2
    finalization.finalize(config, date(2026, 2, 4))  # again: nothing new
    january = of_type(notifications(url), "invoice.finalized")
    assert [(d["invoice_number"], d["invoice_id"], d["total"]) for d in january] == [
        ("VV-000001", "sub_a/2026-01-01", "49.50"),
        ("VV-000002", "sub_b1/2026-01-01", "6.00"),
    ]
    assert january[0] | {"total": None} == {
        "invoice_number": "VV-000001", "invoice_id": "sub_a/2026-01-01", "customer_id": "cus_a",
        "subscription_id": "sub_a", "period_start": "2026-01-01", "period_end": "2026-02-01",
        "total": None, "currency": "USD"}  # fmt: skip

    # 3. late January usage (January is finalized: no alert) and February crossing
    _ok(url, tmp, "events", "load", str(SCENARIO / "events_late.jsonl"))
    more = _events(tmp, "feb.jsonl", ("a-feb-2", "cus_a", "2026-02-10T10:00:00Z", 600),
                   ("b-feb-2", "cus_b", "2026-02-21T10:00:00Z", 10))  # fmt: skip
    _ok(url, tmp, "events", "load", str(more))
    before = notifications(url)
    _ok(url, tmp, "build", "--as-of", "2026-03-04")
    february = notifications(url)[len(before) :]
    assert _crossings(february) == {
        ("plan:pro:usage:api:1000", "sub_a", "2026-02-01", "1100"),
        ("plan:pro:commitment:20", "sub_a", "2026-02-01", "22.00"),
        ("subscription:sub_b2:spend:2.5", "sub_b2", "2026-02-01", "3.00"),
    }
    assert len(february) == 3
    finalization.finalize(config, date(2026, 3, 4))
    adjusted = of_type(notifications(url), "invoice.adjusted")
    assert [(d["invoice_number"], d["invoice_id"], d["adjustment_total"],
             [(c["invoice_number"], c["amount"]) for c in d["corrections"]]) for d in adjusted] == [
        ("VV-000003", "sub_a/2026-02-01", "4.95", [("VV-000001", "4.95")]),
        ("VV-000004", "sub_b2/2026-02-01", "0.50", [("VV-000002", "0.50")]),
    ]  # fmt: skip

    # 4. March alerts afresh; February, finalized, never again; a rerun records nothing
    more = _events(tmp, "mar.jsonl", ("a-mar-1", "cus_a", "2026-03-05T10:00:00Z", 1200),
                   ("a-feb-late", "cus_a", "2026-02-27T10:00:00Z", 5000))  # fmt: skip
    _ok(url, tmp, "events", "load", str(more))
    before = notifications(url)
    _ok(url, tmp, "build", "--as-of", "2026-03-20")
    march = notifications(url)[len(before) :]
    assert _crossings(march) == {
        ("plan:pro:usage:api:1000", "sub_a", "2026-03-01", "1200"),
        ("plan:pro:commitment:20", "sub_a", "2026-03-01", "24.00"),  # February's late usage not
    }
    assert evaluate_thresholds(config, date(2026, 3, 20)) == 0
    assert len(notifications(url)) == len(before) + 2
