"""What `valueverse quality run` prints, and its exit status.

Kept out of cli.py (a shared file) so the command there is three lines. Exit
0 when no critical expectation failed, 1 when one did (stderr names it), and
every problem is a one-line message, never a traceback: the command runs in
schedulers whose logs people read.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from ingestion.warehouse import ValueVerseError, WarehouseConfig


def run_and_summarize(
    config: WarehouseConfig, as_of: date, docs_dir: Path | None, error: type[Exception]
) -> int:
    """Run the suites, print per-suite counts and failures; `error` is the CLI's error type."""
    from ingestion.quality.config import QualityError
    from ingestion.quality.runner import run_quality_detailed

    try:
        report, counts = run_quality_detailed(config, as_of, docs_dir)
    except (QualityError, ValueVerseError) as exc:
        raise error(str(exc)) from None
    except Exception as exc:  # GE or driver failure: one readable line, not a traceback
        raise error(f"quality run failed: {type(exc).__name__}: {exc}") from None

    print(f"data quality run {report.run_id} as of {as_of}")
    for suite, c in counts.items():
        if c.skipped:
            print(f"  {suite}: skipped: {c.skipped}")
            continue
        print(
            f"  {suite}: {c.passed} passed, {c.failed} failed "
            f"({c.critical_failed} critical, {c.failed - c.critical_failed} warning)"
        )
    for line in report.critical_failures:
        print(f"  CRITICAL {line}")
    for line in report.warnings:
        print(f"  warning  {line}")
    print(f"Data Docs: {report.docs_index}")
    if not report.success:
        first = report.critical_failures[0]
        more = len(report.critical_failures) - 1
        tail = f" (and {more} more)" if more else ""
        print(f"valueverse: critical expectation failed: {first}{tail}", file=sys.stderr)
        return 1
    return 0
