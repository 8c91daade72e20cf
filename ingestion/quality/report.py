"""What a run returns: the public `QualityReport` (Dagster and the CLI read it) and
per-suite counts for the CLI's summary (kept apart so the public type stays exactly
the agreed contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class QualityReport:
    run_id: str
    success: bool  # no critical expectation failed
    critical_failures: list[str]  # "suite: expectation (column): observed" lines
    warnings: list[str]
    docs_index: Path  # Data Docs index.html
    skipped: list[str]  # suites skipped and why


@dataclass
class SuiteCounts:
    """Expectations per suite, for the CLI summary."""

    passed: int = 0
    failed: int = 0
    critical_failed: int = 0
    skipped: str | None = None
    failures: list[str] = field(default_factory=list)
