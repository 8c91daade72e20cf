"""The platform's one set of data-health thresholds: each defined once, with its variable.

Three things judge the same landing health: the Dagster sensors and checks
(dagster_project/lib/settings.py), the data-quality suites (ingestion/quality/config.py) and
the Prometheus alert rules (deploy/prometheus/alerts.yml). They used to carry their own
defaults (rejects: 1% for the sensors, 5% for the suites), so one could page while the other
called the same day healthy. Both readers now take their values from here; the alert rules are
static YAML, so tests/unit/test_thresholds.py fails when a rule's number drifts from DEFAULT.

The suites' former variables (VALUEVERSE_QUALITY_MAX_REJECT_RATE, ..._CONFLICT_RATE,
..._UNBILLED_SHARE) are still read when the shared one is unset, so an existing `.env` keeps
working; the shared name wins when both are set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from ingestion.warehouse import ConfigError


@dataclass(frozen=True)
class Threshold:
    """One limit: the variable that sets it, its default and its bounds."""

    env: str
    default: Decimal
    maximum: Decimal | None = Decimal(1)  # shares are 0..1; None: unbounded (ratios, hours)
    legacy_env: str | None = None  # the suites' former name, read when `env` is unset

    def read(self, environ: Mapping[str, str] | None = None) -> Decimal:
        """The value in the environment, else the default; a ConfigError names the variable."""
        env = os.environ if environ is None else environ
        name = self.env
        raw = (env.get(name) or "").strip()
        if not raw and self.legacy_env:
            name, raw = self.legacy_env, (env.get(self.legacy_env) or "").strip()
        if not raw:
            return self.default
        try:
            value = Decimal(raw)
        except ArithmeticError:
            value = Decimal("NaN")
        if not value.is_finite() or len(raw) > 32:
            raise ConfigError(f"{name} must be a decimal number such as 0.5, got {raw!r}")
        if value < 0 or (self.maximum is not None and value > self.maximum):
            bounds = "at least 0" if self.maximum is None else f"between 0 and {self.maximum}"
            raise ConfigError(f"{name} must be {bounds}, got {raw!r}")
        return value


# The newest landed event older than this many hours is stale (sensor, check, ValueVerseNoLanding).
FRESHNESS_HOURS = Threshold("VALUEVERSE_FRESHNESS_HOURS", Decimal(2), maximum=None)
# Shares of what reached landing (sensors: last 24 h; suites: all batches; the alert: 15 min).
MAX_REJECT_SHARE = Threshold(
    "VALUEVERSE_MAX_REJECT_SHARE", Decimal("0.01"), legacy_env="VALUEVERSE_QUALITY_MAX_REJECT_RATE"
)
MAX_CONFLICT_SHARE = Threshold(
    "VALUEVERSE_MAX_CONFLICT_SHARE",
    Decimal("0.001"),
    legacy_env="VALUEVERSE_QUALITY_MAX_CONFLICT_RATE",
)
MAX_UNBILLED_SHARE = Threshold(
    "VALUEVERSE_MAX_UNBILLED_SHARE",
    Decimal("0.05"),
    legacy_env="VALUEVERSE_QUALITY_MAX_UNBILLED_SHARE",
)
# Judged by the suites only, kept here so every limit has one home.
MAX_DUPLICATE_SHARE = Threshold("VALUEVERSE_QUALITY_MAX_DUPLICATE_RATE", Decimal("0.05"))
VOLUME_MIN_RATIO = Threshold("VALUEVERSE_QUALITY_VOLUME_MIN_RATIO", Decimal("0.5"), maximum=None)
VOLUME_MAX_RATIO = Threshold("VALUEVERSE_QUALITY_VOLUME_MAX_RATIO", Decimal(2), maximum=None)
