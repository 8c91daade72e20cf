"""Rating and invoicing entry points: `valueverse build` and `valueverse invoices export`.

The billing rules live in the dbt project (`dbt/`), not here: `build` only runs
`dbt build` in-process against the configured warehouse, and `export_invoices`
only formats the `marts.invoice_lines` table as billing-semantics.md section 9
asks. Formatting happens in Python from exact `Decimal` values, so both
warehouses give byte-identical files (the engines print numbers differently).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingestion.schemas import plain_decimal
from ingestion.warehouse import (
    WarehouseConfig,
    WarehouseError,
    connect_postgres,
    postgres_params,
)

DBT_DIR = Path(__file__).resolve().parent.parent / "dbt"
EXPORT_HEADER = (
    "subscription_id,customer_id,period_start,period_end,line_type,metric,quantity,amount,currency"
)
_EXPORT_QUERY = """
SELECT subscription_id, customer_id, period_start, period_end, line_type, metric, quantity,
       amount, currency, currency_exponent, line_order, charge_index
FROM marts.invoice_lines
WHERE period_end <= {mark}
"""
_BUILT_AS_OF_QUERY = "SELECT max(as_of) FROM marts.subscription_periods"


def dbt_env(config: WarehouseConfig) -> dict[str, str]:
    """The environment dbt/profiles.yml reads its connection from (env_var())."""
    if config.kind == "duckdb":
        assert config.duckdb_path is not None
        return {
            "VALUEVERSE_DBT_TARGET": "duckdb",
            "VALUEVERSE_DUCKDB_PATH": str(config.duckdb_path),
        }
    params = postgres_params(config)
    return {
        "VALUEVERSE_DBT_TARGET": "postgres",
        "VALUEVERSE_PG_HOST": params["host"],
        "VALUEVERSE_PG_PORT": params["port"],
        "VALUEVERSE_PG_USER": params["user"],
        "VALUEVERSE_PG_PASSWORD": params["password"],
        "VALUEVERSE_PG_DBNAME": params["dbname"],
    }


def dbt_args(config: WarehouseConfig, command: str, as_of: date) -> list[str]:
    """Arguments for one dbt command against `config`; each target keeps its own target path
    (switching targets in one path would throw away dbt's partial-parse cache)."""
    target_path = DBT_DIR / "target" / config.kind
    return [
        command,
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target",
        config.kind,
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path / "logs"),
        "--vars",
        json.dumps({"as_of": as_of.isoformat()}),
    ]


def build(config: WarehouseConfig, as_of: date | None) -> int:
    """Run `dbt build` (every model, seed and test) with var as_of; 0 on success.

    dbt's log goes to stderr: stdout stays free for the CLI's own output.
    """
    as_of = as_of or datetime.now(UTC).date()
    _ensure_raw_schema(config)
    os.environ.update(dbt_env(config))
    from dbt.cli.main import dbtRunner

    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = dbtRunner().invoke(dbt_args(config, "build", as_of))
    finally:
        _release_connections()
    if result.exception is not None:  # dbt itself failed (project, profile, connection)
        print(f"valueverse: dbt could not run: {result.exception}", file=sys.stderr)
        return 1
    if not result.success:
        print("valueverse: dbt build failed (see the log above)", file=sys.stderr)
        return 1
    return 0


def _release_connections() -> None:
    """Close what dbt keeps open after a run. dbt-duckdb holds its database in a class
    attribute until the process exits, which stops this process (a Dagster worker, a test)
    from opening the file again read-only, e.g. to export the invoices it just built."""
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


def _ensure_raw_schema(config: WarehouseConfig) -> None:
    """Create the raw tables if nothing was landed yet, so a build on a fresh warehouse
    gives empty marts instead of a missing-table error. The sinks own that DDL."""
    from ingestion.sinks.base import open_sink

    with open_sink(config):
        pass


def export_invoices(config: WarehouseConfig, as_of: date, out: Path) -> int:
    """Write invoice_lines.csv (spec section 9) for periods ending on or before `as_of`.

    Returns the number of lines written (the header not counted).
    """
    rows = sorted(_read_lines(config, as_of), key=_sort_key)
    text = "".join(line + "\n" for line in [EXPORT_HEADER, *(_format(row) for row in rows)])
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(text.encode("utf-8"))
    except OSError as exc:
        raise WarehouseError(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(rows)


def _read_lines(config: WarehouseConfig, as_of: date) -> Sequence[Sequence[Any]]:
    missing = "there are no invoice lines yet: run `valueverse build` first"
    if config.kind == "duckdb":
        import duckdb

        assert config.duckdb_path is not None
        if not config.duckdb_path.exists():
            raise WarehouseError(f"{config.duckdb_path} does not exist: {missing}")
        try:
            con = duckdb.connect(str(config.duckdb_path), read_only=True)
        except duckdb.Error as exc:
            raise WarehouseError(
                f"cannot open DuckDB warehouse {config.duckdb_path}: {exc}"
            ) from None
        try:
            _check_built_as_of(con.execute(_BUILT_AS_OF_QUERY).fetchone(), as_of)
            return con.execute(_EXPORT_QUERY.format(mark="?"), [as_of]).fetchall()
        except duckdb.CatalogException:
            raise WarehouseError(missing) from None
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot read the invoice lines: {exc}") from None
        finally:
            con.close()
    import psycopg

    with connect_postgres(config) as conn:
        try:
            _check_built_as_of(conn.execute(_BUILT_AS_OF_QUERY).fetchone(), as_of)
            return conn.execute(_EXPORT_QUERY.format(mark="%s"), [as_of]).fetchall()
        except psycopg.errors.UndefinedTable:
            raise WarehouseError(missing) from None
        except psycopg.Error as exc:
            raise WarehouseError(f"cannot read the invoice lines: {exc}") from None


def _check_built_as_of(row: Sequence[Any] | None, as_of: date) -> None:
    """The marts hold invoices up to the as_of they were built with: exporting a later date
    would silently leave out the periods that ended in between."""
    built = row[0] if row else None
    if built is not None and as_of > built:
        raise WarehouseError(
            f"the invoices were built as of {built.isoformat()}: run "
            f"`valueverse build --as-of {as_of.isoformat()}` before exporting as of that date"
        )


def _sort_key(row: Sequence[Any]) -> tuple[Any, ...]:
    # subscription_id by code point (Python's str order), period, then the invoice's line order
    return (row[0], row[2], row[10], row[11] or 0)


def _format(row: Sequence[Any]) -> str:
    (
        subscription_id,
        customer_id,
        period_start,
        period_end,
        line_type,
        metric,
        quantity,
        amount,
        currency,
        exponent,
    ) = row[:10]
    fields: Iterable[str] = (
        subscription_id,
        customer_id,
        period_start.isoformat(),
        period_end.isoformat(),
        line_type,
        metric or "",
        "" if quantity is None else plain_decimal(Decimal(quantity)),
        format_amount(Decimal(amount), int(exponent)),
        currency,
    )
    return ",".join(fields)


def format_amount(amount: Decimal, exponent: int) -> str:
    """Exactly `exponent` decimals (`49.00`, `1200`, `0.125`); never `-0.00`."""
    quantized = amount.quantize(Decimal(1).scaleb(-exponent))
    if quantized == 0:
        quantized = abs(quantized)
    return format(quantized, "f")
