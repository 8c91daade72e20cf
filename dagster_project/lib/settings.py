"""Operational thresholds and knobs read from the environment.

Read when a sensor or an asset runs, not at import: the daemon and the run workers pick up a
changed `.env` on their next evaluation without a code reload. Every variable is listed in
`.env.example`; a malformed value fails loudly instead of silently falling back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path


def _decimal(name: str, default: str) -> Decimal:
    raw = os.environ.get(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal share such as 0.01, got {raw!r}") from None
    if not Decimal(0) <= value <= Decimal(1):
        raise ValueError(f"{name} must be between 0 and 1, got {raw!r}")
    return value


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class Thresholds:
    """When the landing sensors alert. Shares are Decimals: exact, like the counts they divide."""

    freshness_hours: int
    max_reject_share: Decimal
    max_conflict_share: Decimal
    max_unbilled_share: Decimal

    @classmethod
    def from_env(cls) -> Thresholds:
        return cls(
            freshness_hours=_int("VALUEVERSE_FRESHNESS_HOURS", 2),
            max_reject_share=_decimal("VALUEVERSE_MAX_REJECT_SHARE", "0.01"),
            max_conflict_share=_decimal("VALUEVERSE_MAX_CONFLICT_SHARE", "0.001"),
            max_unbilled_share=_decimal("VALUEVERSE_MAX_UNBILLED_SHARE", "0.05"),
        )


def grace_days() -> int:
    """Days after a period ends before its invoice is finalized (late events still count)."""
    return _int("VALUEVERSE_FINALIZE_GRACE_DAYS", 3)


def quality_docs_dir() -> Path | None:
    """Where the data quality report writes its Data Docs; None lets it choose."""
    raw = os.environ.get("VALUEVERSE_QUALITY_DIR")
    return Path(raw).resolve() if raw else None


def parse_as_of(raw: str | None) -> date:
    """The billing date a run rates and invoices up to: YYYY-MM-DD, or today (UTC) when empty."""
    if not raw:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"as_of must be a date YYYY-MM-DD, got {raw!r}") from None
