"""Suite `landed_events`: what ingestion landed in raw.* is whole and plausible.

Critical (blocks billing): raw.events keys, quantities and uniqueness, and the
reconciliation of raw.events against raw.ingest_batches (every accepted event
is stored once, nothing else is). A bad raw.events row is scoped to the day of
its event_ts (the invoices whose period holds that day). The reconciliation
is scoped to the whole warehouse: a lost event's time is unknown, so no
period can be cleared.

Warning (reported only): rejected and conflicting events (they are never
billed), the last day's volume against the trailing 7 days, and duplicate,
conflict and reject rates against thresholds.
"""

from __future__ import annotations

from datetime import date, timedelta

import great_expectations.expectations as gxe
import pandas as pd

from ingestion.quality.checks import Check
from ingestion.quality.config import Thresholds
from ingestion.quality.frames import Reader, select_list
from ingestion.quality.gx_helpers import critical, schema_check, warning

SUITE = "landed_events"

EVENTS = ["event_id", "customer_id", "metric", "event_ts", "quantity", "batch_id", "landed_at"]
BATCHES = ["batch_id", "source", "landed_at", "accepted", "duplicates", "conflicts", "rejected"]
REJECTS = ["origin", "payload_hash", "rule", "detail", "batch_id", "rejected_at"]
CONFLICTS = ["event_id", "customer_id", "metric", "event_ts", "quantity", "origin", "batch_id"]
COUNTS = ["accepted", "duplicates", "conflicts", "rejected"]


def landed_event_checks(reader: Reader, as_of: date, thresholds: Thresholds) -> list[Check]:
    return [
        _events(reader),
        _batches(reader),
        _rejects(reader),
        _conflicts(reader),
        _reconciliation(reader),
        _volume(reader, as_of, thresholds),
        _rates(reader, thresholds),
    ]


def _events(reader: Reader) -> Check:
    present = reader.table_columns("raw", "events")
    cols = select_list(EVENTS, present, text=["quantity"])
    frame = reader.frame(
        f"SELECT {cols}, CAST(event_ts AS DATE) AS event_day FROM raw.events"
        if "event_ts" in present
        else f"SELECT {cols} FROM raw.events",
        decimals=["quantity"],
        dates=["event_day"],
    )
    exps = [schema_check(EVENTS, critical)]
    exps += [
        critical(gxe.ExpectColumnValuesToNotBeNull, column=c)
        for c in ("event_id", "customer_id", "metric", "event_ts", "quantity", "batch_id")
        if c in present
    ]
    if "event_id" in present:
        exps.append(critical(gxe.ExpectColumnValuesToBeUnique, column="event_id"))
    if "quantity" in present:
        exps.append(critical(gxe.ExpectColumnValuesToBeBetween, column="quantity", min_value=0))
    scope = ("event_day", None) if "event_ts" in present else None
    return Check(SUITE, "raw_events", frame, exps, scope=scope, key="event_id", complete=False)


def _batches(reader: Reader) -> Check:
    present = reader.table_columns("raw", "ingest_batches")
    frame = reader.frame(f"SELECT {select_list(BATCHES, present)} FROM raw.ingest_batches")
    exps = [schema_check(BATCHES, critical)]
    exps += [
        critical(gxe.ExpectColumnValuesToNotBeNull, column=c)
        for c in ("batch_id", "source", *COUNTS)
        if c in present
    ]
    if "batch_id" in present:
        exps.append(critical(gxe.ExpectColumnValuesToBeUnique, column="batch_id"))
    exps += [
        critical(gxe.ExpectColumnValuesToBeBetween, column=c, min_value=0)
        for c in COUNTS
        if c in present
    ]
    if "source" in present:
        exps.append(
            warning(gxe.ExpectColumnValuesToMatchRegex, column="source", regex=r"^(?:file|kafka):")
        )
    return Check(SUITE, "raw_ingest_batches", frame, exps, key="batch_id")


def _rejects(reader: Reader) -> Check:
    present = reader.table_columns("raw", "rejected_events")
    frame = reader.frame(f"SELECT {select_list(REJECTS, present)} FROM raw.rejected_events")
    exps = [schema_check(REJECTS, warning)]
    exps += [
        warning(gxe.ExpectColumnValuesToNotBeNull, column=c)
        for c in ("origin", "rule", "batch_id")
        if c in present
    ]
    if "rule" in present:  # stable rule codes: field.reason, e.g. quantity.range
        exps.append(
            warning(gxe.ExpectColumnValuesToMatchRegex, column="rule", regex=r"^[a-z_]+\.[a-z_]+$")
        )
    return Check(SUITE, "raw_rejected_events", frame, exps, key="origin")


def _conflicts(reader: Reader) -> Check:
    present = reader.table_columns("raw", "event_conflicts")
    cols = select_list(CONFLICTS, present, text=["quantity"])
    frame = reader.frame(f"SELECT {cols} FROM raw.event_conflicts", decimals=["quantity"])
    exps = [schema_check(CONFLICTS, warning)]
    exps += [
        warning(gxe.ExpectColumnValuesToNotBeNull, column=c)
        for c in ("event_id", "origin", "batch_id")
        if c in present
    ]
    if "quantity" in present:
        exps.append(warning(gxe.ExpectColumnValuesToBeBetween, column="quantity", min_value=0))
    return Check(SUITE, "raw_event_conflicts", frame, exps, key="event_id")


def _reconciliation(reader: Reader) -> Check:
    """Per batch: rows stored in raw.events == accepted in raw.ingest_batches.

    Per batch is stronger than the totals (which it implies) and names the
    batch; events of an unknown batch and batches without rows show up too.
    """
    frame = reader.frame(
        """
        WITH landed AS (SELECT batch_id, COUNT(*) AS stored FROM raw.events GROUP BY batch_id),
             batches AS (SELECT batch_id, accepted FROM raw.ingest_batches WHERE accepted > 0)
        SELECT COALESCE(b.batch_id, l.batch_id) AS batch_id,
               CAST(COALESCE(b.accepted, 0) AS BIGINT) AS accepted,
               CAST(COALESCE(l.stored, 0) AS BIGINT) AS stored
        FROM batches b FULL OUTER JOIN landed l ON l.batch_id = b.batch_id
        ORDER BY 1
        """
    )
    exps = [
        critical(
            gxe.ExpectColumnPairValuesToBeEqual,
            column_A="accepted",
            column_B="stored",
            meta={"why": "rows in raw.events == accepted in raw.ingest_batches, per batch"},
        )
    ]
    return Check(SUITE, "events_vs_batches", frame, exps, key="batch_id")


def _volume(reader: Reader, as_of: date, thresholds: Thresholds) -> Check:
    """Events of the day before as_of against the mean of the 7 days before that."""
    last_day = as_of - timedelta(days=1)
    first = last_day - timedelta(days=7)
    rows = reader.db.rows(
        "SELECT CAST(event_ts AS DATE) AS d, COUNT(*) FROM raw.events "
        "WHERE event_ts >= CAST(%s AS DATE) AND event_ts < CAST(%s AS DATE) GROUP BY 1",
        [str(first), str(as_of)],
    )
    counts = {str(d)[:10]: int(n) for d, n in rows}
    last = counts.get(str(last_day), 0)
    mean = sum(n for d, n in counts.items() if d != str(last_day)) / 7
    low, high = mean * thresholds.volume_min_ratio, mean * thresholds.volume_max_ratio
    frame = pd.DataFrame(
        [{"day": last_day, "events": last, "trailing_7_day_mean": mean}], dtype=object
    )
    # No events in the trailing week: nothing to compare with, any volume is plausible.
    bounds = {"min_value": low, "max_value": high} if mean > 0 else {"min_value": 0}
    exps = [warning(gxe.ExpectColumnValuesToBeBetween, column="events", **bounds)]
    return Check(SUITE, "daily_volume", frame, exps, scope=("day", None), key="day")


def _rates(reader: Reader, thresholds: Thresholds) -> Check:
    """Duplicate, conflict and reject shares of everything that reached landing."""
    row = reader.db.one(
        "SELECT COALESCE(SUM(accepted), 0), COALESCE(SUM(duplicates), 0), "
        "COALESCE(SUM(conflicts), 0), COALESCE(SUM(rejected), 0) FROM raw.ingest_batches"
    )
    assert row is not None  # an aggregate always returns one row
    accepted, duplicates, conflicts, rejected = (int(v) for v in row)
    seen = max(accepted + duplicates + conflicts + rejected, 1)
    frame = pd.DataFrame(
        [
            {
                "events_seen": accepted + duplicates + conflicts + rejected,
                "duplicate_rate": duplicates / seen,
                "conflict_rate": conflicts / seen,
                "reject_rate": rejected / seen,
            }
        ]
    )
    limits = {
        "duplicate_rate": thresholds.max_duplicate_rate,
        "conflict_rate": thresholds.max_conflict_rate,
        "reject_rate": thresholds.max_reject_rate,
    }
    exps = [
        warning(gxe.ExpectColumnValuesToBeBetween, column=c, min_value=0, max_value=limit)
        for c, limit in limits.items()
    ]
    return Check(SUITE, "landing_rates", frame, exps)
