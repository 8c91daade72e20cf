"""deploy/grafana/valueverse.json: a dashboard Grafana can import, whose every query reads series
the platform exports. A panel over a name nobody exports draws "No data" forever, and nothing
else would say so.

Exported means: the ingest service's and the usage API's registries (ingestion/landing/metrics.py,
ingestion/api/telemetry.py) and what a batch job pushes (ingestion/job_telemetry.py), with the
`task` and `item` label values the jobs' code actually uses.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.trace import INVALID_SPAN

from ingestion import job_telemetry
from ingestion.quality import thresholds
from tests.conftest import ROOT

DASHBOARD: dict[str, Any] = json.loads((ROOT / "deploy/grafana/valueverse.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def _exported_series() -> set[str]:
    """Series names as Prometheus sees them (`_total` on counters, `_bucket`/`_count`/`_sum`
    on histograms); labelled metrics count before any child exists."""
    from prometheus_client import REGISTRY

    from ingestion.api import telemetry
    from ingestion.landing import metrics

    assert metrics.LAG  # imported for its registrations on the default registry
    run = job_telemetry.JobRun("t", INVALID_SPAN, counts={"n": 1})
    failed = job_telemetry.JobRun("t", INVALID_SPAN, failed=True)
    registries = [REGISTRY, telemetry.REGISTRY, job_telemetry.job_registry(run, 1.0),
                  job_telemetry.job_registry(failed, 1.0)]  # fmt: skip
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                "gauge": ("",)}  # fmt: skip
    return {family.name + suffix for registry in registries for family in registry.collect()
            for suffix in suffixes.get(family.type, ())}  # fmt: skip


def _job_labels() -> tuple[set[str], set[str]]:
    """The `task` values (span names of job_run calls) and `item` values (keywords of
    run.record calls, and the dbt build's node counts) in the code."""
    from ingestion.billing.dbt_runner import _node_counts

    source = "\n".join(p.read_text() for p in (ROOT / "ingestion").rglob("*.py"))
    tasks = {n.replace(" ", "_") for n in re.findall(r'job_run\(\s*"([^"]+)"', source)}
    items = {kw for call in re.findall(r"run\.record\((.*?)\)\s*(?:#|\n)", source, re.DOTALL)
             for kw in re.findall(r"(\w+)=", call)} | set(_node_counts(None))  # fmt: skip
    return tasks, items


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects: identifiers that are not functions, keywords,
    label names or values, durations or numbers."""
    bare = re.sub(r'"[^"]*"', "", expr)  # strings (label values)
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", bare)
    return {n for n in names if n.lower() not in PROMQL_WORDS}


def test_the_dashboard_is_importable() -> None:
    assert DASHBOARD["uid"] and len(DASHBOARD["uid"]) <= 40
    assert DASHBOARD["title"] and DASHBOARD["schemaVersion"] >= 30
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert {"Ingestion", "Rating", "Collection", "Usage API"} <= {
        p["title"].split(" (")[0].split(" and ")[0]
        for p in DASHBOARD["panels"]
        if p["type"] == "row"
    }
    assert len(PANELS) >= 12
    for panel in PANELS:
        assert panel["title"] and panel["description"] and panel["gridPos"]["w"] > 0
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"].strip(), panel["title"]


def test_every_query_reads_series_the_code_exports() -> None:
    exported = _exported_series()
    tasks, items = _job_labels()
    assert {"dbt_build", "finalize_invoices", "payments_collect", "payments_reconcile"} <= tasks
    for panel in PANELS:
        for target in panel["targets"]:
            expr = target["expr"]
            used = metric_names(expr)
            assert used, (panel["title"], expr)
            assert used <= exported, (panel["title"], sorted(used - exported))
            for values in re.findall(r'task=~?"([^"]+)"', expr):
                assert set(values.split("|")) <= tasks, (panel["title"], values)
            for values in re.findall(r'item=~?"([^"]+)"', expr):
                assert set(values.split("|")) <= items, (panel["title"], values)


def test_the_metric_name_reader_finds_what_it_should() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route=~"/v1/.*"}[5m])))'
    ) == {"a_bucket"}
    assert metric_names("time() - max(b) > bool on (x) c offset 5m") == {"b", "c"}


def _panel(title_start: str) -> dict[str, Any]:
    [found] = [p for p in PANELS if p["title"].startswith(title_start)]
    return found


def _red_line(panel: dict[str, Any]) -> Decimal:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return Decimal(str(next(s["value"] for s in steps if s["color"] == "red")))


def test_threshold_lines_are_the_shared_thresholds() -> None:
    assert _red_line(_panel("Reject share")) == thresholds.MAX_REJECT_SHARE.default
    hours = thresholds.FRESHNESS_HOURS.default
    assert _red_line(_panel("Newest landed event age")) == hours * 3600


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule (`make test` installs promtool with
    `make promtool` before the suite runs)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: make promtool")
    rules = [{"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": target["expr"]}
             for panel in PANELS for target in panel["targets"]]  # fmt: skip
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout
