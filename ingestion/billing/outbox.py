"""The notifications outbox: `billing.notifications`, one row per thing that happened.

A notification is written by the same transaction as the state change that causes it (an
invoice finalized, a payment attempt's new state, a dunning step, a threshold crossed), so a
commit records both and a rollback neither: none is lost and none is invented. Delivery
(webhooks, email: ingestion/notifications/) reads the outbox afterwards, on its own schedule,
and never holds up billing.

Why the id is derived from a key and not drawn at random: the key names the change itself
(`invoice.finalized:VV-000042`, `payment.failed:<attempt id>`), so a rerun, a retry after a
crash or two racing writers record the same change under the same id, once (the INSERT does
nothing on a second try). Receivers deduplicate on that id.

Why the payload is stored as text: the bytes stored are the bytes every delivery sends and
signs, whatever the driver or a later code version would serialize.

Append-only like the rest of the billing store: on PostgreSQL the store's triggers refuse
UPDATE, DELETE and TRUNCATE (ingestion/billing/invoice_store.py creates the table with them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ingestion.warehouse import Session

OUTBOX_TABLE = "notifications"
SCHEMA_VERSION = 1

# every type a notification can have; ingestion/notifications/schemas/<type>.v1.json defines each
EVENT_TYPES = (
    "invoice.finalized",
    "invoice.adjusted",
    "payment.succeeded",
    "payment.failed",
    "payment.requires_action",
    "invoice.uncollectible",
    "dunning.retry_scheduled",
    "usage.threshold_reached",
    "spend.threshold_reached",
    "quality.critical_failed",
    "finalization.blocked",
)

# a fixed namespace: the same key gives the same id on every machine and in every version
_ID_NAMESPACE = uuid.UUID("6f1d3c2e-8b7a-4f5e-9c1d-2a3b4c5d6e7f")

OUTBOX_DDL = """
CREATE SCHEMA IF NOT EXISTS billing;

CREATE TABLE IF NOT EXISTS billing.notifications (
    notification_id  VARCHAR PRIMARY KEY,   -- uuid5 of dedup_key: the receivers' dedup id
    dedup_key        VARCHAR NOT NULL UNIQUE,  -- <type>:<what changed>
    event_type       VARCHAR NOT NULL,
    schema_version   INTEGER NOT NULL,
    customer_id      VARCHAR,               -- whose it is (NULL: the finance team's only)
    subject          VARCHAR,               -- invoice number, subscription/period, run id
    payload          VARCHAR NOT NULL,      -- the JSON document delivered, byte for byte
    recorded_at      TIMESTAMP NOT NULL     -- UTC, real time of writing (same transaction)
);
"""


def notification_id(dedup_key: str) -> str:
    """The id a change is known by everywhere: stable for the same key."""
    return str(uuid.uuid5(_ID_NAMESPACE, dedup_key))


@dataclass(frozen=True)
class Change:
    """A notification to record: `change` names what happened, unique within the type (an
    invoice number, an attempt id and its state); `data` holds the type's fields (its JSON
    Schema)."""

    event_type: str
    change: str
    data: Mapping[str, Any]
    customer_id: str | None = None
    subject: str | None = None


_COLUMNS = (
    "notification_id, dedup_key, event_type, schema_version, customer_id, subject, payload,"
    " recorded_at"
)


def record(
    db: Session,
    event_type: str,
    change: str,
    data: Mapping[str, Any],
    customer_id: str | None = None,
    subject: str | None = None,
    at: datetime | None = None,
) -> str:
    """Record one notification inside the caller's transaction; return its id. Recording the
    same change again is a no-op."""
    return record_many(db, [Change(event_type, change, data, customer_id, subject)], at)[0]


def record_many(db: Session, changes: Sequence[Change], at: datetime | None = None) -> list[str]:
    """Record notifications inside the caller's transaction, many to a statement; return
    their ids. Dates, datetimes and Decimals are written as ISO text and exact decimal strings,
    never floats.

    `at` is when the change happened by the caller's clock (payments: the run's clock), the
    document's `created_at`. The row's `recorded_at` is always the real time of writing: an
    endpoint gets what was recorded after it was added and the backlog check counts age from
    it, so a run with a clock set in the past (a re-run, the demo) must not hide what it wrote."""
    now = datetime.now(UTC)
    recorded = now.replace(tzinfo=None)
    happened = (at or now).astimezone(UTC).replace(tzinfo=None)
    rows = [_row(change, happened, recorded) for change in changes]
    unique: dict[str, tuple[Any, ...]] = {}
    for row in rows:  # a change listed twice in one batch: the first counts, as across batches
        unique.setdefault(row[0], row)
    db.insert_rows(f"INSERT INTO billing.notifications ({_COLUMNS})", list(unique.values()),
                   "ON CONFLICT DO NOTHING")  # fmt: skip
    return [row[0] for row in rows]


def _row(change: Change, happened: datetime, recorded: datetime) -> tuple[Any, ...]:
    if change.event_type not in EVENT_TYPES:
        raise ValueError(f"unknown notification type {change.event_type!r}")
    _refuse_floats(change.data)
    key = f"{change.event_type}:{change.change}"
    ident = notification_id(key)
    document = {
        "id": ident,
        "type": change.event_type,
        "version": SCHEMA_VERSION,
        "created_at": happened.isoformat(timespec="microseconds") + "Z",
        "data": dict(change.data),
    }
    payload = json.dumps(document, default=_plain, sort_keys=True, separators=(",", ":"))
    return (ident, key, change.event_type, SCHEMA_VERSION, change.customer_id, change.subject,
            payload, recorded)  # fmt: skip


def _refuse_floats(value: object) -> None:
    """Money and quantities travel as exact decimal text; a float would round them silently."""
    if isinstance(value, float):
        raise TypeError("a notification cannot carry float (use Decimal)")
    if isinstance(value, Mapping):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_floats(item)


def _plain(value: object) -> str:
    """JSON for the values billing holds: exact decimal text, ISO dates."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"a notification cannot carry {type(value).__name__}")
