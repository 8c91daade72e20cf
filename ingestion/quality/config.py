"""Thresholds and locations for the data-quality run, read from the environment.

Why the environment: the same run is started by the CLI, by Dagster and by
tests, and each wants different tolerances without code changes (house style:
configuration from the environment, every variable listed in .env.example).
Rates are shares of all events that reached landing, so a noisy producer is
visible however many batches it spread over.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DOCS_DIR_ENV = "VALUEVERSE_QUALITY_DIR"
DEFAULT_DOCS_DIR = "valueverse-quality"

# name -> default; every name is listed in .env.example and README.md.
THRESHOLD_DEFAULTS: dict[str, float] = {
    "VALUEVERSE_QUALITY_MAX_DUPLICATE_RATE": 0.05,
    "VALUEVERSE_QUALITY_MAX_CONFLICT_RATE": 0.01,
    "VALUEVERSE_QUALITY_MAX_REJECT_RATE": 0.05,
    "VALUEVERSE_QUALITY_MAX_UNBILLED_SHARE": 0.05,
    "VALUEVERSE_QUALITY_VOLUME_MIN_RATIO": 0.5,
    "VALUEVERSE_QUALITY_VOLUME_MAX_RATIO": 2.0,
}


class QualityError(Exception):
    """The run cannot start (no marts yet, bad setting): shown without a traceback."""


@dataclass(frozen=True)
class Thresholds:
    """Warning thresholds; crossing one never blocks billing, it is reported."""

    max_duplicate_rate: float
    max_conflict_rate: float
    max_reject_rate: float
    max_unbilled_share: float
    volume_min_ratio: float
    volume_max_ratio: float

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Thresholds:
        env = os.environ if environ is None else environ
        values = {}
        for name, default in THRESHOLD_DEFAULTS.items():
            text = (env.get(name) or "").strip()
            try:
                value = float(text) if text else default
            except ValueError:
                raise QualityError(f"{name} must be a number, got {text!r}") from None
            if value < 0:
                raise QualityError(f"{name} must be >= 0, got {text!r}")
            values[name] = value
        return cls(
            max_duplicate_rate=values["VALUEVERSE_QUALITY_MAX_DUPLICATE_RATE"],
            max_conflict_rate=values["VALUEVERSE_QUALITY_MAX_CONFLICT_RATE"],
            max_reject_rate=values["VALUEVERSE_QUALITY_MAX_REJECT_RATE"],
            max_unbilled_share=values["VALUEVERSE_QUALITY_MAX_UNBILLED_SHARE"],
            volume_min_ratio=values["VALUEVERSE_QUALITY_VOLUME_MIN_RATIO"],
            volume_max_ratio=values["VALUEVERSE_QUALITY_VOLUME_MAX_RATIO"],
        )


def docs_dir(explicit: Path | None = None, environ: dict[str, str] | None = None) -> Path:
    """Where the GE project and Data Docs go: argument, else $VALUEVERSE_QUALITY_DIR, else
    ./valueverse-quality (git-ignored: everything in it is generated)."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit.resolve()
    configured = (env.get(DOCS_DIR_ENV) or "").strip()
    return Path(configured).resolve() if configured else Path.cwd() / DEFAULT_DOCS_DIR
