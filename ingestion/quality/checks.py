"""The pieces a suite is made of, and how a GE result becomes result rows.

A *suite* here (landed_events, rated_usage, invoice_lines, payments) spans
several tables; GE validates one batch per suite, so each suite is a list of
`Check`s: one frame plus the built-in expectations run on it. Reconciliations
GE has no expectation for are computed as a small frame first (one row per
invoice or batch) and checked with a built-in pair expectation, so they show
up in Data Docs like every other expectation.

Scope: a check whose frame carries period columns attributes each failing row
to its period, so finalization blocks only the invoices a failure touches.
A failure that cannot be pinned to rows (a missing column, a total, an
expectation GE could not evaluate, or more failing rows than GE listed) gets a
NULL scope: the whole warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from ingestion.quality.frames import to_date

MAX_EXAMPLES = 5


@dataclass
class Check:
    """One frame and its expectations (GE Expectation objects, severity set on each).

    scope: (start column, end column) of the billing dates a row belongs to;
    end None means the row is one day (start, start + 1 day). key: a column
    naming rows in messages (invoice id, batch id).
    """

    suite: str
    name: str
    frame: pd.DataFrame
    expectations: list[Any]
    scope: tuple[str, str | None] | None = None
    key: str | None = None
    complete: bool = True  # list every failing row (needed for exact scopes)

    @property
    def ge_name(self) -> str:
        return f"{self.suite}.{self.name}"


@dataclass(frozen=True)
class ResultRow:
    """One row of quality.expectation_results (run columns are added when writing)."""

    suite: str
    expectation: str
    column_name: str | None
    critical: bool
    success: bool
    observed: str | None
    scope_start: date | None = None
    scope_end: date | None = None

    def line(self) -> str:
        """`suite: expectation (column): observed`, the report's line format."""
        column = f" ({self.column_name})" if self.column_name else ""
        return f"{self.suite}: {self.expectation}{column}: {self.observed or 'failed'}"


@dataclass
class Failure:
    """What a failed GE result says, before it is split by scope."""

    summary: str
    rows: list[int] = field(default_factory=list)
    all_rows_listed: bool = False


def column_label(kwargs: dict[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if "column_list" in kwargs:
        return ", ".join(map(str, kwargs["column_list"]))
    return None


def describe_failure(result: dict[str, Any], exception: str | None) -> Failure:
    """Readable text of a failed result, and the failing row positions GE listed."""
    if exception:
        return Failure(f"could not evaluate: {exception.splitlines()[0][:300]}")
    mismatched = (result.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict) and mismatched.get("missing"):
        return Failure(f"missing columns: {', '.join(map(str, mismatched['missing']))}")
    if "unexpected_count" in result:
        count = int(result["unexpected_count"] or 0)
        total = result.get("element_count")
        rows = result.get("unexpected_index_list")
        if rows is None:  # SUMMARY results list the first few failing rows only
            rows = result.get("partial_unexpected_index_list") or []
        positions = [int(r) for r in rows if isinstance(r, int | float)]
        return Failure(
            f"{count} of {total} rows unexpected",
            positions,
            all_rows_listed=0 < count <= len(positions),
        )
    return Failure(f"observed {result.get('observed_value')!r}")


def _examples(frame: pd.DataFrame, rows: Sequence[int], key: str | None, columns: list[str]) -> str:
    shown = []
    for pos in rows[:MAX_EXAMPLES]:
        record = frame.iloc[pos]
        values = ", ".join(f"{c}={record[c]}" for c in columns if c in frame.columns)
        if key and key in frame.columns:
            shown.append(f"{record[key]} ({values})" if values else str(record[key]))
        else:
            shown.append(values or f"row {pos}")
    more = f" and {len(rows) - MAX_EXAMPLES} more" if len(rows) > MAX_EXAMPLES else ""
    return "; ".join(shown) + more


def scope_of(check: Check, pos: int) -> tuple[date | None, date | None]:
    """The [start, end) billing dates of one frame row, or (None, None) when unknown."""
    if check.scope is None:
        return None, None
    start_col, end_col = check.scope
    start = to_date(check.frame.iloc[pos][start_col])
    if start is None:
        return None, None
    if end_col is None:
        return start, start + timedelta(days=1)
    end = to_date(check.frame.iloc[pos][end_col])
    return (start, end) if end is not None else (None, None)


def split_by_scope(
    check: Check, failure: Failure, columns: list[str]
) -> list[tuple[date | None, date | None, str]]:
    """(scope_start, scope_end, observed) per distinct period of the failing rows.

    Rows whose period is unknown, and failures GE did not list row by row, give
    one NULL-scope entry, so nothing that fails is ever under-scoped.
    """
    if check.scope is None or not failure.rows or not failure.all_rows_listed:
        detail = _examples(check.frame, failure.rows, check.key, columns) if failure.rows else ""
        return [(None, None, failure.summary + (f": {detail}" if detail else ""))]
    groups: dict[tuple[date | None, date | None], list[int]] = {}
    for pos in failure.rows:
        groups.setdefault(scope_of(check, pos), []).append(pos)
    out = []
    for (start, end), rows in sorted(groups.items(), key=lambda g: (g[0][0] is None, g[0])):
        where = f"period [{start}, {end})" if start else "unknown period"
        detail = _examples(check.frame, rows, check.key, columns)
        out.append((start, end, f"{len(rows)} row(s) in {where}: {detail}"))
    return out
