"""Delivery settings from the environment, checked where they are read (a ConfigError names
the variable; secrets are never echoed).

- `VALUEVERSE_WEBHOOK_SIGNING_KEY` (required to add, rotate or deliver to webhooks, at least 32
  characters): the master key every endpoint's signing secret is derived from (secrets.py), so
  the warehouse holds no usable secret.
- `VALUEVERSE_WEBHOOK_ROTATION_GRACE_HOURS` (24): how long the previous secret still signs
  after `webhooks rotate-secret`.
- `VALUEVERSE_WEBHOOK_TIMEOUT_SECONDS` (10): one request's connect + read timeout.
- `VALUEVERSE_NOTIFY_DISABLE_AFTER_HOURS` (120, five days): an endpoint failing without a single
  success for this long is disabled, and the finance address is told.
- `VALUEVERSE_NOTIFY_BATCH` (500): deliveries attempted per endpoint per run (bounded work).
- `VALUEVERSE_NOTIFY_RUN_SECONDS` (60): no attempt starts after a run has taken this long; the
  rest waits for the next run. On DuckDB a run holds the one writer's lock (and in Dagster the
  warehouse pool), so slow receivers must not hold them for long.
- `VALUEVERSE_NOTIFY_MAX_PAYLOAD_BYTES` (262144): a larger payload is never sent (logged failed).
- `VALUEVERSE_NOTIFY_BACKLOG_MINUTES` (30): an outbox row older than this and not delivered to
  an enabled endpoint turns the Dagster check red.
- `VALUEVERSE_FINANCE_EMAIL`: who hears that an endpoint was disabled.
- `VALUEVERSE_SMTP_HOST`, `_PORT` (587), `_USERNAME`, `_PASSWORD`, `_STARTTLS` (1), `_TLS` (0:
  implicit TLS, port 465), `VALUEVERSE_SMTP_FROM` (default the username): the mail server;
  `VALUEVERSE_SMTP_CA_FILE`: the CA certificate (PEM) that signed its certificate, when it is
  not one the system trusts (a private CA).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal

from ingestion.warehouse import ConfigError, env_decimal, env_int

SIGNING_KEY_ENV = "VALUEVERSE_WEBHOOK_SIGNING_KEY"
MIN_SIGNING_KEY_CHARS = 32


def signing_key() -> bytes:
    """The master key, refused when unset or too short to be a key."""
    key = os.environ.get(SIGNING_KEY_ENV, "")
    if not key:
        raise ConfigError(
            f"{SIGNING_KEY_ENV} is not set: webhook secrets are derived from it "
            f"(at least {MIN_SIGNING_KEY_CHARS} random characters, e.g. `openssl rand -hex 32`)"
        )
    if len(key) < MIN_SIGNING_KEY_CHARS:
        raise ConfigError(
            f"{SIGNING_KEY_ENV} is too short ({len(key)} characters): "
            f"use at least {MIN_SIGNING_KEY_CHARS} random characters"
        )
    return key.encode()


@dataclass(frozen=True)
class DeliverySettings:
    grace_hours: int = 24
    timeout_seconds: float = 10.0
    disable_after_hours: int = 120
    batch: int = 500
    run_seconds: int = 60
    max_payload_bytes: int = 262_144
    backlog_minutes: int = 30

    @classmethod
    def from_env(cls) -> DeliverySettings:
        return cls(
            grace_hours=env_int("VALUEVERSE_WEBHOOK_ROTATION_GRACE_HOURS", 24, 0, 24 * 30),
            timeout_seconds=float(
                env_decimal("VALUEVERSE_WEBHOOK_TIMEOUT_SECONDS", "10", Decimal("0.1"), Decimal(60))
            ),  # fmt: skip
            disable_after_hours=env_int("VALUEVERSE_NOTIFY_DISABLE_AFTER_HOURS", 120, 1, 24 * 90),
            batch=env_int("VALUEVERSE_NOTIFY_BATCH", 500, 1, 10_000),
            run_seconds=env_int("VALUEVERSE_NOTIFY_RUN_SECONDS", 60, 1, 3600),
            max_payload_bytes=env_int(
                "VALUEVERSE_NOTIFY_MAX_PAYLOAD_BYTES", 262_144, 1024, 4 * 1024 * 1024
            ),  # fmt: skip
            backlog_minutes=env_int("VALUEVERSE_NOTIFY_BACKLOG_MINUTES", 30, 1, 24 * 60),
        )


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str
    password: str
    starttls: bool
    tls: bool
    sender: str
    ca_file: str | None = None

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """None when no mail server is configured (email endpoints then fail and retry)."""
        host = os.environ.get("VALUEVERSE_SMTP_HOST", "").strip()
        if not host:
            return None
        tls = os.environ.get("VALUEVERSE_SMTP_TLS", "0") == "1"
        username = os.environ.get("VALUEVERSE_SMTP_USERNAME", "")
        sender = os.environ.get("VALUEVERSE_SMTP_FROM", "") or username
        if "@" not in sender:
            raise ConfigError("VALUEVERSE_SMTP_FROM (or an email-shaped _USERNAME) must be set")
        return cls(
            host=host,
            port=env_int("VALUEVERSE_SMTP_PORT", 465 if tls else 587, 1, 65535),
            username=username,
            password=os.environ.get("VALUEVERSE_SMTP_PASSWORD", ""),
            starttls=not tls and os.environ.get("VALUEVERSE_SMTP_STARTTLS", "1") == "1",
            tls=tls,
            sender=sender,
            ca_file=os.environ.get("VALUEVERSE_SMTP_CA_FILE") or None,
        )


def finance_email() -> str | None:
    address = os.environ.get("VALUEVERSE_FINANCE_EMAIL", "").strip()
    return address or None
