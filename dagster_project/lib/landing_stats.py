"""What the landing side has done, read from the warehouse, and the pure rules that judge it.

The numbers come from `raw.ingest_batches` (one row per landing transaction, written in the
same transaction as the events, so the counts never disagree with the data) and
`marts.unbilled_usage`. The judging functions are pure so the thresholds are unit-tested
without a warehouse; the sensors and asset checks only wire them to Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from dagster_project.lib.settings import Thresholds
from dagster_project.lib.warehouse import table_exists
from ingestion.warehouse import WarehouseConfig, fetch

# Shares are judged over the batches landed in this window: an all-time share would let a
# burst of bad data hide behind months of good data.
SHARE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class LandingCounts:
    """Totals of raw.ingest_batches (since `since`, or all time) and the rated/unbilled events."""

    batches: int
    accepted: int
    duplicates: int
    conflicts: int
    rejected: int
    newest_landed_at: datetime | None  # newest batch that accepted at least one event
    events_rated: int = 0  # accepted events in the window that dbt has rated (billed or not)
    unbilled: int = 0  # of those, the ones no charge bills (marts.unbilled_usage)

    @property
    def messages(self) -> int:
        return self.accepted + self.duplicates + self.conflicts + self.rejected


@dataclass(frozen=True)
class ShareFinding:
    name: str  # reject_share | conflict_share | unbilled_share
    numerator: int
    denominator: int
    limit: Decimal

    @property
    def share(self) -> Decimal:
        return (
            Decimal(self.numerator) / Decimal(self.denominator) if self.denominator else Decimal(0)
        )

    @property
    def ok(self) -> bool:
        return self.share <= self.limit

    def describe(self) -> str:
        return (
            f"{self.name} {self.share:.6f} ({self.numerator}/{self.denominator}) "
            f"{'<=' if self.ok else '>'} limit {self.limit}"
        )


def judge_shares(counts: LandingCounts, thresholds: Thresholds) -> list[ShareFinding]:
    """Reject and conflict shares of every message landed; unbilled share of the rated events."""
    return [
        ShareFinding("reject_share", counts.rejected, counts.messages, thresholds.max_reject_share),
        ShareFinding(
            "conflict_share", counts.conflicts, counts.messages, thresholds.max_conflict_share
        ),
        ShareFinding(
            "unbilled_share", counts.unbilled, counts.events_rated, thresholds.max_unbilled_share
        ),
    ]


def staleness(newest: datetime | None, now: datetime, hours: int) -> timedelta | None:
    """How far past the freshness limit the newest landed event is; None when fresh.
    No landed event at all counts as stale by the whole limit."""
    limit = timedelta(hours=hours)
    if newest is None:
        return limit
    age = now - newest
    return age - limit if age > limit else None


_BATCH_TOTALS = """
SELECT count(*), coalesce(sum(accepted), 0), coalesce(sum(duplicates), 0),
       coalesce(sum(conflicts), 0), coalesce(sum(rejected), 0)
FROM raw.ingest_batches WHERE landed_at >= %s
"""
_NEWEST = "SELECT max(landed_at) FROM raw.ingest_batches WHERE accepted > 0"
# events dbt has rated: billed ones (once each, though one may count toward several charges)
# plus the unbilled ones; events landed since the last build are in neither yet
_RATED = """
SELECT
    (SELECT count(DISTINCT event_id) FROM marts.invoice_line_events WHERE landed_at >= %s)
    + (SELECT count(*) FROM marts.unbilled_usage WHERE landed_at >= %s),
    (SELECT count(*) FROM marts.unbilled_usage WHERE landed_at >= %s)
"""


def read_newest_landed_at(config: WarehouseConfig) -> datetime | None:
    """When the newest batch that accepted events landed (naive UTC); None before any."""
    if not table_exists(config, "raw", "ingest_batches"):
        return None
    return fetch(config, _NEWEST)[0][0]


def read_landing_counts(config: WarehouseConfig, since: datetime | None = None) -> LandingCounts:
    """Counts since `since` (naive UTC, like the raw timestamps; None: all time). An empty or
    not yet created warehouse reads as zero counts."""
    since = since or datetime(1970, 1, 1)
    if not table_exists(config, "raw", "ingest_batches"):
        return LandingCounts(0, 0, 0, 0, 0, None)
    batches, accepted, duplicates, conflicts, rejected = fetch(config, _BATCH_TOTALS, [since])[0]
    newest = fetch(config, _NEWEST)[0][0]
    rated = unbilled = 0
    if table_exists(config, "marts", "unbilled_usage") and table_exists(
        config, "marts", "invoice_line_events"
    ):
        rated, unbilled = fetch(config, _RATED, [since, since, since])[0]
    return LandingCounts(
        int(batches),
        int(accepted),
        int(duplicates),
        int(conflicts),
        int(rejected),
        newest,
        int(rated),
        int(unbilled),
    )
