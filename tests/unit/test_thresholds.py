"""One set of thresholds: the Dagster sensors, the quality suites and the alert rules agree.

The alert rules are static YAML, so this test reads their numbers back and compares them with
the shared defaults (ingestion/quality/thresholds.py): changing one without the other fails.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from dagster_project.lib.settings import Thresholds as SensorThresholds
from ingestion.quality import thresholds as limits
from ingestion.quality.config import QualityError
from ingestion.quality.config import Thresholds as SuiteThresholds
from ingestion.warehouse import ConfigError

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
SHARED = [name for name in vars(limits) if name.isupper()]


def _rules() -> dict[str, dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_reject_alert_uses_the_shared_reject_share() -> None:
    rule = _rules()["ValueVerseRejectRateHigh"]
    limit = re.search(r">\s*([0-9.]+)\s*$", str(rule["expr"]).strip())
    assert limit is not None, rule["expr"]
    assert Decimal(limit.group(1)) == limits.MAX_REJECT_SHARE.default
    percent = limits.MAX_REJECT_SHARE.default * 100
    assert f"More than {percent.normalize()}%" in str(rule["annotations"]["description"])  # type: ignore[index]


def test_no_landing_alert_uses_the_shared_freshness_hours() -> None:
    rule = _rules()["ValueVerseNoLanding"]
    expr = str(rule["expr"])
    hours = limits.FRESHNESS_HOURS.default
    assert [Decimal(h) for h in re.findall(r">\s*(\d+)\s*\*\s*3600", expr)] == [hours]
    windows = re.findall(r"\[(\d+)h\]", expr)
    assert windows and all(Decimal(w) == hours for w in windows)
    assert f"newer than {hours} hours" in str(rule["annotations"]["summary"])  # type: ignore[index]


def test_sensors_and_suites_read_the_same_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SHARED:
        threshold = getattr(limits, name)
        monkeypatch.delenv(threshold.env, raising=False)
        if threshold.legacy_env:
            monkeypatch.delenv(threshold.legacy_env, raising=False)
    sensors, suites = SensorThresholds.from_env(), SuiteThresholds.from_env()
    assert sensors.freshness_hours == limits.FRESHNESS_HOURS.default == 2
    assert sensors.max_reject_share == Decimal(str(suites.max_reject_rate)) == Decimal("0.01")
    assert sensors.max_conflict_share == Decimal(str(suites.max_conflict_rate)) == Decimal("0.001")
    assert sensors.max_unbilled_share == Decimal(str(suites.max_unbilled_share)) == Decimal("0.05")


def test_one_variable_moves_both_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUEVERSE_MAX_REJECT_SHARE", "0.02")
    assert SensorThresholds.from_env().max_reject_share == Decimal("0.02")
    assert SuiteThresholds.from_env().max_reject_rate == 0.02


def test_the_suites_former_variable_is_read_when_the_shared_one_is_unset() -> None:
    old = {"VALUEVERSE_QUALITY_MAX_CONFLICT_RATE": "0.03"}
    assert limits.MAX_CONFLICT_SHARE.read(old) == Decimal("0.03")
    both = old | {"VALUEVERSE_MAX_CONFLICT_SHARE": "0.002"}
    assert limits.MAX_CONFLICT_SHARE.read(both) == Decimal("0.002")
    assert limits.MAX_CONFLICT_SHARE.read({}) == Decimal("0.001")


@pytest.mark.parametrize(
    ("threshold", "raw", "message"),
    [
        (limits.MAX_REJECT_SHARE, "1.5", "VALUEVERSE_MAX_REJECT_SHARE must be between 0 and 1"),
        (limits.MAX_REJECT_SHARE, "nan", "must be a decimal number"),
        (limits.VOLUME_MAX_RATIO, "-1", "VALUEVERSE_QUALITY_VOLUME_MAX_RATIO must be at least 0"),
    ],
)
def test_bad_values_name_their_variable(
    threshold: limits.Threshold, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        threshold.read({threshold.env: raw})
    assert limits.VOLUME_MAX_RATIO.read({limits.VOLUME_MAX_RATIO.env: "3"}) == 3


def test_a_bad_former_variable_is_named_in_the_suites_error() -> None:
    with pytest.raises(QualityError, match="VALUEVERSE_QUALITY_MAX_REJECT_RATE"):
        SuiteThresholds.from_env({"VALUEVERSE_QUALITY_MAX_REJECT_RATE": "lots"})
