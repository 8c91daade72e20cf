"""Small constructors for GE expectations with an explicit severity.

GE 1.24 has a first-class `severity` on every Expectation (critical, warning,
info; shown in Data Docs and kept in the suite JSON), so the critical/warning
split lives there, not in `meta`. Every expectation here states its severity.
"""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity


def critical(kind: type[Any], **kwargs: Any) -> Any:
    """A failure blocks finalization of the invoices in its scope."""
    return kind(severity=FailureSeverity.CRITICAL, **kwargs)


def warning(kind: type[Any], **kwargs: Any) -> Any:
    """A failure is reported (Data Docs, results table) and never blocks billing."""
    return kind(severity=FailureSeverity.WARNING, **kwargs)


def schema_check(columns: list[str], severity: Any = critical) -> Any:
    """The columns the other checks rely on exist (more columns are fine)."""
    return severity(gxe.ExpectTableColumnsToMatchSet, column_set=columns, exact_match=False)


def is_critical(expectation_config: Any) -> bool:
    return bool(getattr(expectation_config, "severity", None) == FailureSeverity.CRITICAL)
