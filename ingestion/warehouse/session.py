"""Opening the warehouse and running parameterized SQL on it, the same way on both backends.

One placeholder style everywhere: psycopg's `%s` (and `%%` for a literal percent sign). Why
that one: PostgreSQL gets the SQL untouched, parsed by psycopg itself, and DuckDB's `?` is the
exact inverse of psycopg's own rule (after a `%` comes `s` or `%`, nothing else), so the
translation is one regular expression with no case to guess: no string literal, comment or
`::` cast can be mistaken for a placeholder, as it could with `:name` or a bare `?`. Parameters
are always passed (an empty list when there are none) so that psycopg applies the same rule to
every statement; DDL that holds a literal `%` (a PL/pgSQL RAISE) goes through `script`.

A failing statement raises the driver's own error (duckdb.Error, psycopg.Error): a bug in the
SQL is not the warehouse being unavailable. Only opening a connection turns driver errors into
`WarehouseError` (unreachable), `WarehouseBusy` (a DuckDB file held by a writer) or
`WarehouseMissing` (a DuckDB file read before anything created it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

from ingestion.warehouse.config import WarehouseConfig
from ingestion.warehouse.errors import ConfigError, WarehouseBusy, WarehouseError, WarehouseMissing

_PERCENT = re.compile(r"%(.?)", re.DOTALL)
# rows per statement of Session.insert_rows: at 8 columns 4,000 parameters, well inside both
# drivers' limits (PostgreSQL's 65,535)
ROWS_PER_INSERT = 500
_RETRY_PAUSE = 0.2  # seconds between attempts to open a DuckDB file a writer holds


def duckdb_sql(sql: str) -> str:
    """psycopg's placeholders as DuckDB's: `%s` -> `?`, `%%` -> `%`; anything else after a `%`
    is refused, as psycopg refuses it on PostgreSQL."""

    def swap(match: re.Match[str]) -> str:
        after = match.group(1)
        if after == "s":
            return "?"
        if after == "%":
            return "%"
        raise ValueError(f"only %s and %% may follow a % in warehouse SQL, got {match[0]!r}")

    return _PERCENT.sub(swap, sql)


def connect_duckdb(config: WarehouseConfig, read_only: bool = False, wait: float = 0.0) -> Any:
    """A DuckDB connection. Read-write creates the file; read-only neither creates it
    (WarehouseMissing) nor waits for a writer longer than `wait` seconds (WarehouseBusy)."""
    import duckdb

    path = config.duckdb_path
    assert path is not None
    if read_only and not path.exists():
        raise WarehouseMissing(f"{path} does not exist yet")
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a setting to fix, not a busy warehouse worth retrying
            raise ConfigError(
                f"cannot create the folder of DuckDB warehouse {path}: {exc.strerror or exc}"
            ) from None
    deadline = time.monotonic() + wait
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            # IOException: another process holds the lock; ConnectionException: this process
            # has the file open with another mode
            busy = read_only or "lock" in str(exc).lower()
            if busy and time.monotonic() < deadline:
                time.sleep(_RETRY_PAUSE)
                continue
            if read_only:
                raise WarehouseBusy(f"{path} is busy: {exc}") from None
            error = WarehouseBusy if busy else WarehouseError
            raise error(f"cannot open DuckDB warehouse {path}: {exc}") from None


def connect_postgres(config: WarehouseConfig, autocommit: bool = False) -> Any:
    """A psycopg connection; an unreachable server is a WarehouseError (password masked)."""
    import psycopg

    try:
        return psycopg.connect(config.url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise WarehouseError(f"cannot connect to PostgreSQL {config.redacted()}: {exc}") from None


class Session:
    """One open connection (`kind` "duckdb" or "postgres"); SQL marks parameters with `%s`.
    `with` closes it."""

    def __init__(self, kind: str, con: Any) -> None:
        self.kind = kind
        self.con = con

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        if self.kind == "duckdb":
            return self.con.execute(duckdb_sql(sql), list(params))
        return self.con.execute(sql, list(params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._execute(sql, params).fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row, or None when there is none."""
        row = self._execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = self.one(sql, params)
        return None if row is None else row[0]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.kind == "duckdb":
            self.con.executemany(duckdb_sql(sql), [list(row) for row in rows])
            return
        with self.con.cursor() as cur:
            cur.executemany(sql, rows)

    def insert_rows(self, insert: str, rows: Sequence[Sequence[Any]], suffix: str = "") -> None:
        """`insert` ("INSERT INTO t (a, b)") of `rows`, ROWS_PER_INSERT to a statement of
        multi-row VALUES, each followed by `suffix` (e.g. "ON CONFLICT DO NOTHING").

        Why not executemany: on DuckDB it runs one statement per row, several milliseconds each
        into a table with unique keys (measured: 5 ms a row, 1.5 s for 300; finalizing the
        demo's 1,500 invoices with a notification each went from 2.7 to 42.7 s). `append` is
        the faster way for rows that need no conflict clause (through Arrow on DuckDB)."""
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            marks = "(" + ", ".join(["%s"] * len(chunk[0])) + ")"
            self.execute(f"{insert} VALUES {', '.join([marks] * len(chunk))} {suffix}",
                         [value for row in chunk for value in row])  # fmt: skip

    def script(self, sql: str) -> None:
        """DDL without parameters, several statements allowed, no `%` translated."""
        self.con.execute(sql)

    def append(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert many rows: through Arrow on DuckDB (its executemany runs one statement per
        row), executemany on PostgreSQL."""
        names = ", ".join(columns)
        if self.kind == "postgres":
            marks = ", ".join("%s" for _ in columns)
            self.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            return
        import pyarrow as pa

        batch = pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})
        self.con.register("valueverse_append", batch)
        try:
            self.con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM valueverse_append")
        finally:
            self.con.unregister("valueverse_append")

    def frame(self, sql: str, params: Sequence[Any] = (), columnar: bool = False) -> Any:
        """A pandas DataFrame of the rows, values as the driver gives them (Decimal for money).
        `columnar`: DuckDB converts column by column (fast on big tables, but DECIMAL becomes
        float64: select money as text); PostgreSQL always builds the frame from rows."""
        import pandas as pd

        cur = self._execute(sql, params)
        if columnar and self.kind == "duckdb":
            return cur.df()
        names = [d[0] for d in cur.description or []]
        return pd.DataFrame.from_records(cur.fetchall(), columns=names)


def open_connection(config: WarehouseConfig, read_only: bool = False, wait: float = 0.0) -> Any:
    """A driver connection in autocommit mode (each statement commits on its own).

    `read_only` matters on DuckDB, which allows one writing process per file: a reader opens
    the file read-only (see `connect_duckdb`, and `wait`). PostgreSQL readers never block
    writers, so there it is the same connection."""
    if config.kind == "duckdb":
        return connect_duckdb(config, read_only=read_only, wait=wait)
    return connect_postgres(config, autocommit=True)


def connect(config: WarehouseConfig, read_only: bool = False, wait: float = 0.0) -> Session:
    """An autocommit session (see `open_connection`); `with` closes it."""
    return Session(config.kind, open_connection(config, read_only, wait))


@contextmanager
def transaction(config: WarehouseConfig) -> Iterator[Session]:
    """One read-write transaction: committed when the block ends, rolled back if it raises."""
    if config.kind == "duckdb":
        con = connect_duckdb(config)
        con.execute("BEGIN TRANSACTION")
    else:
        con = connect_postgres(config)  # psycopg opens the transaction at the first statement
    try:
        yield Session(config.kind, con)
    except BaseException:
        con.rollback()
        raise
    else:
        con.commit()
    finally:
        con.close()


def fetch(
    config: WarehouseConfig, sql: str, params: Sequence[Any] = (), wait: float = 0.0
) -> list[tuple[Any, ...]]:
    """Rows of one read-only query, over a connection closed at once."""
    with connect(config, read_only=True, wait=wait) as session:
        return session.rows(sql, params)


def is_undefined(exc: BaseException) -> bool:
    """Did a statement fail because a table or view does not exist (e.g. marts never built)?"""
    import duckdb
    import psycopg.errors

    return isinstance(exc, (duckdb.CatalogException, psycopg.errors.UndefinedTable))


def is_permission_denied(exc: BaseException) -> bool:
    """Did the role lack the right (PostgreSQL service roles, ingestion/roles/service_roles.py)?"""
    import psycopg.errors

    return isinstance(exc, psycopg.errors.InsufficientPrivilege)


def is_duplicate_key(exc: BaseException) -> bool:
    """Did an INSERT collide with a row another writer added under the same key?"""
    import duckdb
    import psycopg.errors

    if isinstance(exc, psycopg.errors.UniqueViolation):
        return True
    return isinstance(exc, duckdb.ConstraintException) and "duplicate key" in str(exc).lower()


def driver_errors() -> tuple[type[Exception], ...]:
    """The drivers' base errors, for a caller that reports any failed statement as one line."""
    import duckdb
    import psycopg

    return (duckdb.Error, psycopg.Error)
