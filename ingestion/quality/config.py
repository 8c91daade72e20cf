"""Thresholds and locations for the data-quality run, read from the environment.

Why the environment: the same run is started by the CLI, by Dagster and by
tests, and each wants different tolerances without code changes (house style:
configuration from the environment, every variable listed in .env.example). The limits
and their variables are the platform's shared ones (thresholds.py), so the suites warn
where the Dagster sensors and the alert rules do.
Rates are shares of all events that reached landing, so a noisy producer is
visible however many batches it spread over.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ingestion.quality import thresholds as limits
from ingestion.warehouse import ConfigError

DOCS_DIR_ENV = "VALUEVERSE_QUALITY_DIR"
DEFAULT_DOCS_DIR = "valueverse-quality"


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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Thresholds:
        """The shared limits (ingestion/quality/thresholds.py), as the suites' floats."""
        try:
            return cls(
                max_duplicate_rate=float(limits.MAX_DUPLICATE_SHARE.read(environ)),
                max_conflict_rate=float(limits.MAX_CONFLICT_SHARE.read(environ)),
                max_reject_rate=float(limits.MAX_REJECT_SHARE.read(environ)),
                max_unbilled_share=float(limits.MAX_UNBILLED_SHARE.read(environ)),
                volume_min_ratio=float(limits.VOLUME_MIN_RATIO.read(environ)),
                volume_max_ratio=float(limits.VOLUME_MAX_RATIO.read(environ)),
            )
        except ConfigError as exc:
            raise QualityError(str(exc)) from None


def docs_dir(explicit: Path | None = None, environ: dict[str, str] | None = None) -> Path:
    """Where the GE project and Data Docs go: argument, else $VALUEVERSE_QUALITY_DIR, else
    ./valueverse-quality (git-ignored: everything in it is generated)."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit.resolve()
    configured = (env.get(DOCS_DIR_ENV) or "").strip()
    return Path(configured).resolve() if configured else Path.cwd() / DEFAULT_DOCS_DIR
