"""The README's "### Alerts" tells whoever is paged what each alert of
deploy/prometheus/alerts.yml means and what to do, and where the dashboard is: a rule added
without its row fails here."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT


def _alerts_section() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^### Alerts\n(.*?)^#{2,3} ", readme, re.M | re.S)
    assert found, "README.md has no ### Alerts section"
    return found.group(1)


def test_every_alert_has_a_row_saying_what_it_means_and_what_to_do() -> None:
    groups = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    alerts = [rule["alert"] for group in groups for rule in group["rules"]]
    assert len(alerts) >= 7
    section = _alerts_section()
    assert "| alert | means | do |" in section
    for alert in alerts:
        [row] = [line for line in section.splitlines() if line.startswith(f"| `{alert}` |")]
        means, do = (cell.strip() for cell in row.split("|")[2:4])
        assert means and do, alert


def test_the_section_points_to_the_dashboard_and_the_shared_thresholds() -> None:
    section = _alerts_section()
    assert "deploy/grafana/valueverse.json" in section
    assert "ingestion/quality/thresholds.py" in section
