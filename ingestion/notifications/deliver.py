"""Delivering the outbox: every enabled endpoint gets what is due for it, and every attempt is
logged (`valueverse webhooks deliver`, and the Dagster job `deliver_notifications_job`).

At least once, never under a new id: an attempt is sent first and logged after, each log row
committed on its own. A process killed between the two leaves no row, so the next run finds
the notification still due and sends it again with the same `webhook-id` (the notification's
id, fixed by the outbox): the receiver, which deduplicates on it, processes it once.

Retries follow RETRY_DELAYS (the first attempt at once, then after 5 s, 5 min, 30 min, 2 h,
5 h, 10 h and 10 h: eight attempts over about 28 hours); after the last the pair is `gave_up`
and only a replay sends it again. An endpoint that has failed for DeliverySettings.
disable_after_hours without one success in between is disabled, and the finance address gets
an email saying so.

Bounded work: at most `batch` notifications per endpoint per run, and no attempt started after
`run_seconds` (on DuckDB a run holds the one writer's lock); one request at a time per
endpoint (a receiver never sees two of ours at once); after a failure the endpoint's other
due notifications wait until that failure's retry is due (the schedule paces the endpoint),
so a dead receiver costs one timeout per step of the schedule, not one per notification;
payloads over `max_payload_bytes` are logged as failed, never sent.
"""

from __future__ import annotations

import html
import json
import logging
import smtplib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from ingestion.notifications import http_post, mail
from ingestion.notifications.endpoints import disable_endpoint, utc_now
from ingestion.notifications.settings import (
    DeliverySettings,
    SmtpSettings,
    finance_email,
    signing_key,
)
from ingestion.notifications.signing import headers, signing_generations
from ingestion.notifications.store import (
    Due,
    Endpoint,
    due_for,
    has_notify_tables,
    latest_status,
    load_endpoints,
)
from ingestion.warehouse import Session, WarehouseConfig, connect

log = logging.getLogger("valueverse.notifications")

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)


@dataclass
class DeliveryRun:
    delivered: int = 0
    failed: int = 0
    gave_up: int = 0
    disabled: list[str] = field(default_factory=list)
    out_of_time: bool = False  # stopped at VALUEVERSE_NOTIFY_RUN_SECONDS; the rest is still due

    def summary(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "gave_up": self.gave_up,
                "disabled": len(self.disabled), "out_of_time": int(self.out_of_time)}  # fmt: skip


def deliver(
    config: WarehouseConfig,
    now: datetime | None = None,
    settings: DeliverySettings | None = None,
    smtp: SmtpSettings | None = None,
) -> DeliveryRun:
    """One pass over the enabled endpoints. `now` (naive UTC) is the run's clock: it decides
    what is due and stamps the log; tests and replays move it, the job uses the real one."""
    settings = settings or DeliverySettings.from_env()
    smtp = smtp if smtp is not None else SmtpSettings.from_env()
    clock = now or utc_now()
    started = time.monotonic()
    run = DeliveryRun()
    with connect(config) as db:
        if not has_notify_tables(db):  # no endpoint was ever added: nothing to send
            return run
        endpoints = load_endpoints(db, enabled_only=True)
        master = signing_key() if any(not e.is_email for e in endpoints) else b""
        for endpoint in endpoints:
            if _backing_off(db, endpoint, clock):
                continue
            for due in due_for(db, endpoint, clock, settings.batch):
                if time.monotonic() - started > settings.run_seconds:
                    run.out_of_time = True
                    break
                outcome = _attempt(endpoint, due, master, clock, settings, smtp)
                # the run's clock plus the time it has taken: rows stay in the order they happened
                logged = clock + timedelta(seconds=time.monotonic() - started)
                status = _log(db, endpoint, due, outcome, logged)
                setattr(run, status, getattr(run, status) + 1)
                if not (outcome.ok or outcome.permanent):
                    break  # the rest waits until this one's retry is due (_backing_off)
            if _failing_too_long(db, endpoint, clock, settings):
                _disable(db, endpoint, clock, settings, smtp)
                run.disabled.append(endpoint.endpoint_id)
    return run


def anything_due(config: WarehouseConfig, now: datetime | None = None) -> bool:
    """Whether a delivery run would send something now (read-only: for the Dagster sensor)."""
    clock = now or utc_now()
    with connect(config, read_only=True) as db:
        if not has_notify_tables(db):
            return False
        return any(
            not _backing_off(db, e, clock) and due_for(db, e, clock, 1)
            for e in load_endpoints(db, enabled_only=True)
        )


def _backing_off(db: Session, endpoint: Endpoint, clock: datetime) -> bool:
    """Whether the endpoint's latest attempt failed and its retry is not due yet: the retry
    schedule paces the whole endpoint, so a receiver that is down gets one request per step of
    the schedule, not one per waiting notification (a replay request lifts the pause)."""
    latest = latest_status(db, endpoint)
    return (
        latest is not None and latest[0] == "failed" and latest[1] is not None and latest[1] > clock
    )


def _attempt(
    endpoint: Endpoint, due: Due, master: bytes, clock: datetime, settings: DeliverySettings,
    smtp: SmtpSettings | None,
) -> http_post.Outcome:  # fmt: skip
    body = due.payload.encode()
    if len(body) > settings.max_payload_bytes:
        cap = f"payload of {len(body)} bytes over the cap"
        return http_post.Outcome(False, None, 0, cap, permanent=True)
    if endpoint.is_email:
        return _email(endpoint.url[len("mailto:") :], due, settings, smtp)
    generations = signing_generations(endpoint.generation, endpoint.previous_valid_until, clock)
    signed = headers(master, endpoint.endpoint_id, generations, due.notification_id,
                     int(time.time()), body)  # fmt: skip
    return http_post.post(endpoint.url, body, signed, settings.timeout_seconds)


def _email(
    address: str, due: Due, settings: DeliverySettings, smtp: SmtpSettings | None
) -> http_post.Outcome:
    if smtp is None:
        return http_post.Outcome(False, None, 0, "no mail server: set VALUEVERSE_SMTP_HOST")
    document = json.loads(due.payload)
    subject, text, page = mail.render({
        "event_type": due.event_type, "subject": due.subject, "customer_id": due.customer_id,
        "recorded_at": due.recorded_at.isoformat(sep=" ", timespec="seconds"),
        "notification_id": due.notification_id, "data": document.get("data"),
    })  # fmt: skip
    msg = mail.message(smtp.sender, address, due.notification_id, subject, text, page)
    started = time.monotonic()
    try:
        mail.send(smtp, msg, settings.timeout_seconds)
    except (smtplib.SMTPException, OSError) as exc:
        latency = int((time.monotonic() - started) * 1000)
        return http_post.Outcome(False, None, latency, f"{type(exc).__name__}: {exc}"[:500])
    return http_post.Outcome(True, None, int((time.monotonic() - started) * 1000), None)


def _log(
    db: Session, endpoint: Endpoint, due: Due, outcome: http_post.Outcome, clock: datetime
) -> str:
    """Append the attempt (its own commit); return delivered, failed or gave_up."""
    next_at = None
    if outcome.ok:
        status = "delivered"
    elif not outcome.permanent and due.attempt <= len(RETRY_DELAYS):
        status, next_at = "failed", clock + RETRY_DELAYS[due.attempt - 1]
    else:
        status = "gave_up"
    db.execute(
        "INSERT INTO notify.deliveries (delivery_id, notification_id, endpoint_id, attempt,"
        " status, status_code, latency_ms, error, next_attempt_at, logged_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [str(uuid.uuid4()), due.notification_id, endpoint.endpoint_id, due.attempt, status,
         outcome.status_code, outcome.latency_ms, outcome.error, next_at, clock],
    )  # fmt: skip
    if not outcome.ok:
        log.warning("delivery of %s to %s failed (attempt %d): %s", due.notification_id,
                    endpoint.endpoint_id, due.attempt, outcome.error)  # fmt: skip
    return status


def _failing_too_long(
    db: Session, endpoint: Endpoint, clock: datetime, settings: DeliverySettings
) -> bool:
    """Its first failure since its last success (or since it was enabled) is older than the
    window."""
    first = db.value(
        "SELECT min(logged_at) FROM notify.deliveries WHERE endpoint_id = %s"
        " AND status IN ('failed', 'gave_up') AND logged_at >= %s AND logged_at > coalesce("
        " (SELECT max(logged_at) FROM notify.deliveries WHERE endpoint_id = %s"
        "  AND status = 'delivered'), %s)",
        [endpoint.endpoint_id, endpoint.enabled_since, endpoint.endpoint_id,
         endpoint.enabled_since],
    )  # fmt: skip
    return first is not None and first <= clock - timedelta(hours=settings.disable_after_hours)


def _disable(
    db: Session, endpoint: Endpoint, clock: datetime, settings: DeliverySettings,
    smtp: SmtpSettings | None,
) -> None:  # fmt: skip
    hours = settings.disable_after_hours
    reason = f"failed for over {hours} h without a success"
    disable_endpoint(db, endpoint.endpoint_id, reason, clock)
    log.error("endpoint %s disabled: %s", endpoint.endpoint_id, reason)
    finance = finance_email()
    if finance is None or smtp is None:
        log.error("nobody told of the disabled endpoint: VALUEVERSE_FINANCE_EMAIL or "
                  "VALUEVERSE_SMTP_HOST is not set")  # fmt: skip
        return
    target = endpoint.url if endpoint.is_email else _host(endpoint.url)
    text = (
        f"The notification endpoint {endpoint.endpoint_id} ({target}) has been disabled: it"
        f" {reason}.\n\nIts notifications are kept. Once the receiver works again:\n"
        f"  valueverse webhooks enable {endpoint.endpoint_id}\n"
        f"  valueverse webhooks replay --since <when it began failing> --endpoint"
        f" {endpoint.endpoint_id}\n"
    )
    ident = f"endpoint-disabled-{endpoint.endpoint_id}-{clock:%Y%m%dT%H%M%S}"
    msg = mail.message(smtp.sender, finance, ident,
                       f"[ValueVerse] webhook endpoint {endpoint.endpoint_id} disabled", text,
                       f"<pre>{html.escape(text)}</pre>")  # fmt: skip
    try:
        mail.send(smtp, msg, settings.timeout_seconds)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("could not email %s about %s: %s", finance, endpoint.endpoint_id, exc)


def _host(url: str) -> str:
    """Where a webhook goes, without its path or query (which may carry a receiver's token)."""
    return urlsplit(url).hostname or "?"
