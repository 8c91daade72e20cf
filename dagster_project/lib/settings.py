"""Operational thresholds and knobs read from the environment.

Read when a sensor or an asset runs, not at import: the daemon and the run workers pick up a
changed `.env` on their next evaluation without a code reload. Every variable is listed in
`.env.example`; a malformed value fails loudly (a ConfigError naming the variable, from the
readers shared with the CLI) instead of silently falling back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from ingestion.quality import thresholds as limits
from ingestion.warehouse import env_int


@dataclass(frozen=True)
class Thresholds:
    """When the landing sensors alert. Shares are Decimals: exact, like the counts they divide.
    Variables and defaults are the platform's shared ones (ingestion/quality/thresholds.py),
    which the quality suites and the alert rules use too."""

    freshness_hours: int
    max_reject_share: Decimal
    max_conflict_share: Decimal
    max_unbilled_share: Decimal

    @classmethod
    def from_env(cls) -> Thresholds:
        return cls(
            freshness_hours=env_int(
                limits.FRESHNESS_HOURS.env, int(limits.FRESHNESS_HOURS.default)
            ),
            max_reject_share=limits.MAX_REJECT_SHARE.read(),
            max_conflict_share=limits.MAX_CONFLICT_SHARE.read(),
            max_unbilled_share=limits.MAX_UNBILLED_SHARE.read(),
        )


def grace_days() -> int:
    """Days after a period ends before its invoice is finalized (late events still count)."""
    return env_int("VALUEVERSE_FINALIZE_GRACE_DAYS", 3, maximum=366)


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
