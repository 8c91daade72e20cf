"""Numbers read from the environment, checked where they are read.

A malformed value is a ConfigError naming the variable and what it must be, reported as one
line by whichever command or service reads it; never a traceback, and never read while a
command line is being parsed (`--help` works whatever the environment holds).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from ingestion.warehouse.errors import ConfigError, UsageError

N = TypeVar("N", int, Decimal)


def env_int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """The whole number in `name`, `default` when it is unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 18:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}")
    return _within(name, int(raw), minimum, maximum, raw)


def env_decimal(
    name: str, default: str, minimum: Decimal, maximum: Decimal | None = None
) -> Decimal:
    """The decimal number in `name` (exact, e.g. a share or seconds), `default` when unset."""
    raw = os.environ.get(name, "").strip() or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or len(raw) > 32:
        raise ConfigError(f"{name} must be a decimal number such as 0.5, got {raw!r}")
    return _within(name, value, minimum, maximum, raw)


def _within(name: str, value: N, low: N, high: N | None, raw: str) -> N:
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {bounds}, got {raw!r}")
    return value


REPLAY_VARIABLE = "VALUEVERSE_ALLOW_FUTURE_CLOCK"
log = logging.getLogger("valueverse.clock")


def refuse_future(moment: date | datetime, what: str) -> None:
    """Refuse to act for a day or moment after now (UTC): finalizing as of a future date
    issues still-open periods, and dunning with a future clock charges ahead of schedule, both
    irreversibly. A replay or a test with a fixed clock sets VALUEVERSE_ALLOW_FUTURE_CLOCK=1,
    and every use of it is logged."""
    now = datetime.now(UTC).replace(tzinfo=None)
    if isinstance(moment, datetime):
        when = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        future = when > now
    else:
        future = moment > now.date()
    if not future:
        return
    if os.environ.get(REPLAY_VARIABLE) == "1":
        log.warning("%s %s is in the future; allowed by %s=1", what, moment, REPLAY_VARIABLE)
        return
    raise UsageError(
        f"{what} {moment.isoformat()} is after now ({now.isoformat(timespec='seconds')}Z UTC):"
        f" refused, it cannot be undone (a replay sets {REPLAY_VARIABLE}=1)"
    )
