"""The `notify` schema: where notifications go (`notify.endpoints`) and what happened when they
were sent (`notify.deliveries`), the same DDL on DuckDB and PostgreSQL.

An endpoint is a webhook URL (http/https) or an email recipient (`mailto:`), for some event
types and optionally one customer. It stores no secret: only the generation its signing secret
is derived from (signing.py) and until when the previous generation still signs.

The delivery log is append-only (the billing role may INSERT and SELECT it, never UPDATE or
DELETE: service_roles.py): one row per attempt, and one `replay` row per replay request. The
state of a (notification, endpoint) pair is its latest row: none yet (due if the notification
was recorded after the endpoint was added), `failed` (due again at `next_attempt_at`),
`replay` (due now), `delivered` or `gave_up` (done). Why a log and not a status column: the
log is the history a person reads when a receiver says it never got something, and nothing
has to be updated in place between sending and recording, which keeps delivery crash-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestion.warehouse import Session, WarehouseConfig, connect

NOTIFY_DDL = """
CREATE SCHEMA IF NOT EXISTS notify;

CREATE TABLE IF NOT EXISTS notify.endpoints (
    endpoint_id           VARCHAR PRIMARY KEY,  -- ep_<hex>
    url                   VARCHAR NOT NULL,     -- https://... or mailto:address
    event_types           VARCHAR NOT NULL,     -- comma-separated types, or *
    customer_id           VARCHAR,              -- NULL: every customer's notifications
    enabled               BOOLEAN NOT NULL,
    generation            INTEGER NOT NULL,     -- of the signing secret (signing.py)
    previous_valid_until  TIMESTAMP,            -- UTC: the previous generation signs until then
    created_at            TIMESTAMP NOT NULL,   -- UTC: notifications from then on are sent
    enabled_since         TIMESTAMP NOT NULL,   -- UTC: added or last re-enabled
    disabled_at           TIMESTAMP,
    disabled_reason       VARCHAR
);

CREATE TABLE IF NOT EXISTS notify.deliveries (
    delivery_id      VARCHAR PRIMARY KEY,
    notification_id  VARCHAR NOT NULL,
    endpoint_id      VARCHAR NOT NULL,
    attempt          INTEGER NOT NULL,   -- 1, 2, ... within a round; 0 for a replay request
    status           VARCHAR NOT NULL,   -- delivered | failed | gave_up | replay
    status_code      INTEGER,            -- the receiver's HTTP status (NULL: none, or email)
    latency_ms       INTEGER,
    error            VARCHAR,            -- why it failed, at most 500 characters
    next_attempt_at  TIMESTAMP,          -- UTC, when a failed one is due again
    logged_at        TIMESTAMP NOT NULL  -- UTC
);

CREATE INDEX IF NOT EXISTS deliveries_by_pair
    ON notify.deliveries (endpoint_id, notification_id);
"""

TABLES = ("endpoints", "deliveries")


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    url: str
    event_types: tuple[str, ...]  # ("*",): every type
    customer_id: str | None
    enabled: bool
    generation: int
    previous_valid_until: datetime | None
    created_at: datetime
    enabled_since: datetime
    disabled_at: datetime | None
    disabled_reason: str | None

    @property
    def is_email(self) -> bool:
        return self.url.startswith("mailto:")


ENDPOINT_COLUMNS = (
    "endpoint_id, url, event_types, customer_id, enabled, generation, previous_valid_until,"
    " created_at, enabled_since, disabled_at, disabled_reason"
)


def endpoint_from_row(row: tuple[Any, ...]) -> Endpoint:
    values = list(row)
    values[2] = tuple(values[2].split(","))
    return Endpoint(*values)


def ensure_notify_store(config: WarehouseConfig) -> None:
    """The outbox (billing) and the notify tables, created where missing. Skipped when they
    exist: a service role may use the tables but not run DDL in the owner's schema."""
    from ingestion.billing.invoice_store import ensure_store

    ensure_store(config)
    with connect(config) as db:
        if not has_notify_tables(db):
            db.script(NOTIFY_DDL)


def has_notify_tables(db: Session) -> bool:
    present = db.value(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'notify'"
        " AND table_name IN ('endpoints', 'deliveries')"
    )
    return bool(present == len(TABLES))


def latest_status(db: Session, endpoint: Endpoint) -> tuple[str, datetime | None] | None:
    """The endpoint's latest log row: (status, next_attempt_at), None before any."""
    row = db.one(
        "SELECT status, next_attempt_at FROM notify.deliveries WHERE endpoint_id = %s"
        " ORDER BY logged_at DESC, attempt DESC LIMIT 1",
        [endpoint.endpoint_id],
    )
    return None if row is None else (row[0], row[1])


def load_endpoints(db: Session, enabled_only: bool = False) -> list[Endpoint]:
    where = " WHERE enabled" if enabled_only else ""
    rows = db.rows(
        f"SELECT {ENDPOINT_COLUMNS} FROM notify.endpoints{where} ORDER BY created_at, endpoint_id"
    )
    return [endpoint_from_row(r) for r in rows]


def load_endpoint(db: Session, endpoint_id: str) -> Endpoint | None:
    row = db.one(
        f"SELECT {ENDPOINT_COLUMNS} FROM notify.endpoints WHERE endpoint_id = %s", [endpoint_id]
    )
    return None if row is None else endpoint_from_row(row)


# the latest log row of each notification for one endpoint: its delivery state
LATEST_SQL = """
SELECT notification_id, status, attempt, next_attempt_at FROM (
    SELECT notification_id, status, attempt, next_attempt_at, row_number() OVER (
        PARTITION BY notification_id ORDER BY logged_at DESC, attempt DESC) AS latest
    FROM notify.deliveries WHERE endpoint_id = %s
) AS ranked WHERE latest = 1
"""


@dataclass(frozen=True)
class Due:
    notification_id: str
    event_type: str
    customer_id: str | None
    subject: str | None
    payload: str
    recorded_at: datetime
    attempt: int  # the number this attempt gets


def _pairs_sql(endpoint: Endpoint, states: str, params: list[Any]) -> str:
    """FROM/WHERE of the endpoint's notifications whose latest state matches `states` (SQL over
    `l.status`, `l.next_attempt_at`, `n.recorded_at`), filtered by its types and customer."""
    filters = ""
    if endpoint.event_types != ("*",):
        filters += f" AND n.event_type IN ({', '.join('%s' for _ in endpoint.event_types)})"
        params.extend(endpoint.event_types)
    if endpoint.customer_id is not None:
        filters += " AND n.customer_id = %s"
        params.append(endpoint.customer_id)
    return (
        f" FROM billing.notifications n LEFT JOIN ({LATEST_SQL}) AS l"
        f" ON l.notification_id = n.notification_id WHERE ({states}){filters}"
    )


def due_for(db: Session, endpoint: Endpoint, now: datetime, limit: int) -> list[Due]:
    """What `endpoint` should be sent now, oldest first, at most `limit`."""
    params: list[Any] = [endpoint.endpoint_id, endpoint.created_at, now]
    where = _pairs_sql(
        endpoint,
        "(l.status IS NULL AND n.recorded_at >= %s)"
        " OR (l.status IN ('failed', 'replay') AND l.next_attempt_at <= %s)",
        params,
    )
    rows = db.rows(
        "SELECT n.notification_id, n.event_type, n.customer_id, n.subject, n.payload,"
        " n.recorded_at, CASE WHEN l.status = 'failed' THEN l.attempt + 1 ELSE 1 END"
        f"{where} ORDER BY n.recorded_at, n.notification_id LIMIT {int(limit)}",
        params,
    )
    return [Due(*row) for row in rows]


def undelivered_before(db: Session, endpoint: Endpoint, cutoff: datetime) -> int:
    """How many of the endpoint's notifications recorded before `cutoff` are not delivered
    yet (nor given up on): the outbox's backlog for it."""
    params: list[Any] = [endpoint.endpoint_id, endpoint.created_at, cutoff]
    where = _pairs_sql(
        endpoint,
        "(l.status IS NULL AND n.recorded_at >= %s OR l.status IN ('failed', 'replay'))"
        " AND n.recorded_at < %s",
        params,
    )
    return int(db.value(f"SELECT count(*){where}", params))
