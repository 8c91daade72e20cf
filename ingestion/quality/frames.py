"""Reading warehouse tables into pandas frames, the same way on both backends.

Why frames on PostgreSQL too (and not GE's SQL datasource): GE's SQL path does
not work on DuckDB, so DuckDB must go through frames anyway; doing the same on
PostgreSQL keeps one code path, identical expectations, identical Data Docs
and identical result rows on both warehouses. The reconciliations are
computed frames in any case. Frames read only the columns the checks need.

Money and quantities never become float: the SQL casts them to text and they
arrive here as `Decimal`, so reconciliations compare exact values (DuckDB's
`.df()` would otherwise turn DECIMAL into float64).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from ingestion.warehouse import Session, WarehouseConfig, connect


def to_decimal(value: Any) -> Decimal | None:
    """Text (or a number) from the warehouse as an exact Decimal; NULL stays None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return Decimal(str(value))


def to_date(value: Any) -> date | None:
    """A DATE from either driver (date, datetime, pandas Timestamp or NaT) as a date."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@dataclass
class Reader:
    """One open warehouse session; `kind` is "duckdb" or "postgres"."""

    db: Session

    @property
    def kind(self) -> str:
        return self.db.kind

    def table_columns(self, schema: str, table: str) -> list[str]:
        """Columns of schema.table in order; empty when the table does not exist."""
        rows = self.db.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema, table],
        )
        return [str(r[0]) for r in rows]

    def scalar(self, sql: str) -> Any:
        return self.db.value(sql)

    def frame(
        self, sql: str, decimals: Iterable[str] = (), dates: Iterable[str] = ()
    ) -> pd.DataFrame:
        """Rows of `sql`; `decimals` columns (selected as text) become Decimal, `dates` date."""
        df = self.db.frame(sql, columnar=True)
        for col in decimals:
            if col in df.columns:
                df[col] = pd.Series([to_decimal(v) for v in df[col]], dtype=object)
        for col in dates:
            if col in df.columns:
                df[col] = pd.Series([to_date(v) for v in df[col]], dtype=object)
        return df.reset_index(drop=True)


@contextmanager
def open_reader(config: WarehouseConfig) -> Iterator[Reader]:
    """A read connection, closed on exit (DuckDB allows one writer process at a time)."""
    with connect(config) as db:
        yield Reader(db)


def select_list(
    wanted: Iterable[str], present: Iterable[str], text: Iterable[str] = (), alias: str = ""
) -> str:
    """`SELECT` list of the wanted columns that exist, money/quantity columns cast to text.

    Only existing columns are read, so a missing one fails the schema expectation
    instead of the query; `alias` ("p.") qualifies them in a join.
    """
    have = set(present)
    as_text = set(text)
    parts = [
        f"CAST({alias}{c} AS VARCHAR) AS {c}" if c in as_text else f"{alias}{c}"
        for c in wanted
        if c in have
    ]
    return ", ".join(parts) if parts else "1 AS no_columns"
