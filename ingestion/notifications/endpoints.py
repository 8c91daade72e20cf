"""Managing where notifications go (the `valueverse webhooks` commands): add, disable, rotate
a secret, request a replay, read the delivery log."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ingestion.billing.outbox import EVENT_TYPES
from ingestion.notifications.settings import signing_key
from ingestion.notifications.signing import endpoint_secret
from ingestion.notifications.store import (
    Endpoint,
    ensure_notify_store,
    load_endpoint,
    load_endpoints,
)
from ingestion.warehouse import Session, UsageError, WarehouseConfig, connect, transaction

MAX_URL_CHARS = 2000
_EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+$")


def utc_now() -> datetime:
    """Naive UTC, as every TIMESTAMP column of the warehouse holds it."""
    return datetime.now(UTC).replace(tzinfo=None)


def check_url(url: str) -> str:
    """An http(s) URL with a host, or `mailto:` one address; a UsageError says what is wrong."""
    if len(url) > MAX_URL_CHARS or any(c.isspace() for c in url):
        raise UsageError(f"not a usable URL (spaces, or over {MAX_URL_CHARS} characters)")
    if url.startswith("mailto:"):
        if not _EMAIL.match(url[len("mailto:") :]):
            raise UsageError(f"{url!r}: mailto: needs one email address, e.g. mailto:ap@acme.com")
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{url!r}: only http:// and https:// URLs (or mailto:) can receive")
    if not parts.hostname:
        raise UsageError(f"{url!r}: the URL has no host")
    if parts.username or parts.password:
        raise UsageError("a URL with a user or password is refused: it would be stored in clear")
    return url


def check_events(text: str) -> tuple[str, ...]:
    events = tuple(sorted({e.strip() for e in text.split(",") if e.strip()}))
    if events == ("*",):
        return events
    unknown = [e for e in events if e not in EVENT_TYPES]
    if not events or unknown:
        raise UsageError(
            f"unknown event type(s) {', '.join(unknown) or '(none given)'}; "
            f"use * or some of: {', '.join(EVENT_TYPES)}"
        )
    return events


def add_endpoint(
    config: WarehouseConfig, url: str, events: str, customer_id: str | None
) -> tuple[str, str | None]:
    """Store a new endpoint; return its id and, for a webhook, its signing secret (shown once,
    never stored)."""
    url = check_url(url)
    types = check_events(events)
    master = None if url.startswith("mailto:") else signing_key()  # refused before any write
    ensure_notify_store(config)
    endpoint_id = "ep_" + secrets.token_hex(8)
    now = utc_now()
    with transaction(config) as db:
        db.execute(
            "INSERT INTO notify.endpoints (endpoint_id, url, event_types, customer_id, enabled,"
            " generation, previous_valid_until, created_at, enabled_since, disabled_at,"
            " disabled_reason) VALUES (%s, %s, %s, %s, TRUE, 1, NULL, %s, %s, NULL, NULL)",
            [endpoint_id, url, ",".join(types), customer_id, now, now],
        )
    return endpoint_id, None if master is None else endpoint_secret(master, endpoint_id, 1)


def _existing(db: Session, endpoint_id: str) -> Endpoint:
    endpoint = load_endpoint(db, endpoint_id)
    if endpoint is None:
        raise UsageError(f"no endpoint {endpoint_id!r} (valueverse webhooks list)")
    return endpoint


def disable_endpoint(db: Session, endpoint_id: str, reason: str, now: datetime) -> bool:
    """Disable it; False when it was disabled already."""
    endpoint = _existing(db, endpoint_id)
    if not endpoint.enabled:
        return False
    db.execute(
        "UPDATE notify.endpoints SET enabled = FALSE, disabled_at = %s, disabled_reason = %s"
        " WHERE endpoint_id = %s",
        [now, reason[:500], endpoint_id],
    )
    return True


def disable_by_hand(config: WarehouseConfig, endpoint_id: str) -> bool:
    ensure_notify_store(config)
    with transaction(config) as db:
        return disable_endpoint(db, endpoint_id, "disabled by hand", utc_now())


def list_endpoints(config: WarehouseConfig) -> list[dict[str, Any]]:
    """Every endpoint as plain values (what `webhooks list` prints; there is no secret)."""
    ensure_notify_store(config)
    with connect(config) as db:
        endpoints = load_endpoints(db)
    return [
        {
            "endpoint_id": e.endpoint_id,
            "url": e.url,
            "events": list(e.event_types),
            "customer_id": e.customer_id,
            "enabled": e.enabled,
            "generation": e.generation,
            "previous_secret_valid_until": _iso(e.previous_valid_until),
            "created_at": _iso(e.created_at),
            "disabled_at": _iso(e.disabled_at),
            "disabled_reason": e.disabled_reason,
        }  # fmt: skip
        for e in endpoints
    ]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def enable_endpoint(config: WarehouseConfig, endpoint_id: str) -> bool:
    """Enable it again (its failure window starts afresh); False when it was enabled."""
    ensure_notify_store(config)
    with transaction(config) as db:
        if _existing(db, endpoint_id).enabled:
            return False
        db.execute(
            "UPDATE notify.endpoints SET enabled = TRUE, enabled_since = %s, disabled_at = NULL,"
            " disabled_reason = NULL WHERE endpoint_id = %s",
            [utc_now(), endpoint_id],
        )
    return True


def rotate_secret(
    config: WarehouseConfig, endpoint_id: str, grace_hours: int
) -> tuple[str, datetime]:
    """Bump the generation; the previous secret keeps signing for `grace_hours`. Returns the new
    secret and when the old one stops."""
    master = signing_key()
    ensure_notify_store(config)
    until = utc_now() + timedelta(hours=grace_hours)
    with transaction(config) as db:
        endpoint = _existing(db, endpoint_id)
        if endpoint.is_email:
            raise UsageError(f"{endpoint_id} is an email recipient: it has no signing secret")
        generation = endpoint.generation + 1
        db.execute(
            "UPDATE notify.endpoints SET generation = %s, previous_valid_until = %s"
            " WHERE endpoint_id = %s",
            [generation, until, endpoint_id],
        )
    return endpoint_secret(master, endpoint_id, generation), until


def request_replay(
    config: WarehouseConfig, notification_id: str | None, since: datetime | None,
    endpoint_id: str | None = None, limit: int = 10_000,
) -> int:  # fmt: skip
    """Make notifications due again (now) for every enabled endpoint they are meant for: one
    id, or everything recorded since a moment. Returns the (notification, endpoint) pairs
    requested. Delivered again under the same id: receivers that keep ids ignore them."""
    ensure_notify_store(config)
    now = utc_now()
    with transaction(config) as db:
        endpoints = [
            e for e in load_endpoints(db, enabled_only=True) if endpoint_id in (None, e.endpoint_id)
        ]
        if notification_id is not None:
            rows = db.rows(
                "SELECT notification_id, event_type, customer_id FROM billing.notifications"
                " WHERE notification_id = %s",
                [notification_id],
            )
            if not rows:
                raise UsageError(f"no notification {notification_id!r} in billing.notifications")
        else:
            assert since is not None
            rows = db.rows(
                "SELECT notification_id, event_type, customer_id FROM billing.notifications"
                f" WHERE recorded_at >= %s ORDER BY recorded_at LIMIT {int(limit)}",
                [since.astimezone(UTC).replace(tzinfo=None)],
            )
        pairs = [
            [str(uuid.uuid4()), ident, e.endpoint_id, 0, "replay", now, now]
            for ident, event_type, customer in rows
            for e in endpoints
            if wants(e, event_type, customer)
        ]
        if pairs:
            db.executemany(
                "INSERT INTO notify.deliveries (delivery_id, notification_id, endpoint_id,"
                " attempt, status, next_attempt_at, logged_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                pairs,
            )
    return len(pairs)


def wants(endpoint: Endpoint, event_type: str, customer_id: str | None) -> bool:
    """Whether this endpoint receives notifications of this type and customer."""
    by_type = endpoint.event_types == ("*",) or event_type in endpoint.event_types
    return by_type and endpoint.customer_id in (None, customer_id)


def list_deliveries(
    config: WarehouseConfig, failed_only: bool, limit: int = 200
) -> list[dict[str, Any]]:
    """The latest log rows, newest first; `failed_only`: attempts that failed or gave up."""
    ensure_notify_store(config)
    where = " WHERE status IN ('failed', 'gave_up')" if failed_only else ""
    with connect(config) as db:
        cur_rows = db.rows(
            "SELECT delivery_id, notification_id, endpoint_id, attempt, status, status_code,"
            " latency_ms, error, next_attempt_at, logged_at FROM notify.deliveries"
            f"{where} ORDER BY logged_at DESC, attempt DESC LIMIT {int(limit)}"
        )
    names = ("delivery_id", "notification_id", "endpoint_id", "attempt", "status",
             "status_code", "latency_ms", "error", "next_attempt_at", "logged_at")  # fmt: skip
    return [
        {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in zip(names, row, strict=True)
        }
        for row in cur_rows
    ]
