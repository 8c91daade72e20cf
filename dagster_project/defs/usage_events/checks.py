"""Landing health as asset checks: freshness of `landed_events`, and the reject, conflict and
unbilled shares against their limits (VALUEVERSE_FRESHNESS_HOURS, VALUEVERSE_MAX_*_SHARE).

Each check is both runnable (it runs after `landed_events` / the marts in the hourly job, or by
hand from the UI) and reported by the sensors in `sensors.py`, which emit evaluations of these
same checks. A failing landing check turns the asset red in the asset graph: that is where a
person sees stale or suspicious landing without reading sensor logs. Severity WARN: landing
health does not stop billing; the data quality gate (defs/quality) does.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from dagster_project.lib.landing_stats import (
    SHARE_WINDOW,
    LandingCounts,
    judge_shares,
    read_landing_counts,
    read_newest_landed_at,
    staleness,
)
from dagster_project.lib.settings import Thresholds
from dagster_project.lib.translator import LANDED_EVENTS_KEY
from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource
from ingestion.warehouse import WarehouseConfig

UNBILLED_KEY = dg.AssetKey(["marts", "unbilled_usage"])
FRESHNESS_CHECK = "landed_events_fresh"
SHARE_CHECKS: Mapping[str, dg.AssetKey] = {
    "reject_share": LANDED_EVENTS_KEY,
    "conflict_share": LANDED_EVENTS_KEY,
    "unbilled_share": UNBILLED_KEY,
}


def share_check_name(share: str) -> str:
    return f"{share}_within_limit"


@dataclass(frozen=True)
class Verdict:
    """One judged check, in the shape both an asset check and a sensor can report."""

    asset_key: dg.AssetKey
    check_name: str
    passed: bool
    description: str
    metadata: Mapping[str, Any]

    def evaluation(self) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=self.asset_key,
            check_name=self.check_name,
            passed=self.passed,
            metadata=dict(self.metadata),
            severity=dg.AssetCheckSeverity.WARN,
            description=self.description,
        )

    def result(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=self.passed,
            metadata=dict(self.metadata),
            severity=dg.AssetCheckSeverity.WARN,
            description=self.description,
        )


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # raw timestamps are naive UTC


def freshness_verdict(
    config: WarehouseConfig, thresholds: Thresholds, now: datetime | None = None
) -> Verdict:
    now = now or _utcnow()
    newest = read_newest_landed_at(config)
    late = staleness(newest, now, thresholds.freshness_hours)
    newest_text = newest.isoformat(sep=" ", timespec="seconds") if newest else "never"
    if newest is None:
        text = f"freshness stale: events have never landed (limit {thresholds.freshness_hours} h)"
    elif late is None:
        text = (
            f"freshness ok: newest landed event {newest_text} UTC is within "
            f"{thresholds.freshness_hours} h"
        )
    else:
        text = (
            f"freshness stale: newest landed event {newest_text} UTC is older than "
            f"{thresholds.freshness_hours} h"
        )
    return Verdict(
        LANDED_EVENTS_KEY,
        FRESHNESS_CHECK,
        late is None,
        text,
        {
            "newest_landed_at": newest_text,
            "freshness_hours": thresholds.freshness_hours,
            "hours_late": round(late.total_seconds() / 3600, 2) if late is not None else 0,
        },
    )


def share_verdicts(
    config: WarehouseConfig, thresholds: Thresholds, now: datetime | None = None
) -> list[Verdict]:
    """The three shares over the batches landed in the last SHARE_WINDOW."""
    since = (now or _utcnow()) - SHARE_WINDOW
    counts: LandingCounts = read_landing_counts(config, since=since)
    verdicts = []
    for finding in judge_shares(counts, thresholds):
        verdicts.append(
            Verdict(
                SHARE_CHECKS[finding.name],
                share_check_name(finding.name),
                finding.ok,
                f"{'ok' if finding.ok else 'over the limit'}: {finding.describe()} in the "
                f"last {int(SHARE_WINDOW.total_seconds() // 3600)} h",
                {
                    "share": str(finding.share.quantize(finding.limit.scaleb(-3))),
                    "numerator": finding.numerator,
                    "denominator": finding.denominator,
                    "limit": str(finding.limit),
                    "window_start": since.isoformat(sep=" ", timespec="seconds"),
                },
            )
        )
    return verdicts


@dg.asset_check(
    asset=LANDED_EVENTS_KEY,
    name=FRESHNESS_CHECK,
    pool=WAREHOUSE_POOL,
    description="The newest landed event is at most VALUEVERSE_FRESHNESS_HOURS old.",
)
def landed_events_fresh(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return freshness_verdict(warehouse.config(), Thresholds.from_env()).result()


def _share_check(share: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=SHARE_CHECKS[share],
        name=share_check_name(share),
        pool=WAREHOUSE_POOL,
        description=f"The {share.replace('_', ' ')} of the last 24 h of landing is at most "
        f"VALUEVERSE_MAX_{share.upper()}.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        verdicts = share_verdicts(warehouse.config(), Thresholds.from_env())
        return next(v for v in verdicts if v.check_name == share_check_name(share)).result()

    return _check


share_checks = [_share_check(share) for share in SHARE_CHECKS]
