"""The warehouse as a Dagster resource, and small read helpers for sensors and metadata.

The URL comes from VALUEVERSE_WAREHOUSE and is parsed by `ingestion.warehouse.resolve`, the
same function every `valueverse` command uses, so Dagster and the CLI always agree on where the
data is. Reads open DuckDB read-only and close at once: DuckDB allows one writing process per
file, and a sensor that kept the file open would block the next landing or dbt build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from ingestion.warehouse import WarehouseConfig, WarehouseError, connect_postgres, resolve

# Every step that touches the warehouse runs in this pool, limited to one step at a time by the
# generated dagster.yaml (lib/instance.py): DuckDB allows one writing process and refuses
# readers while it writes, and two dbt builds would race on one target folder.
WAREHOUSE_POOL = "warehouse"


class WarehouseBusy(WarehouseError):
    """The DuckDB file is being written by another process (a landing or a dbt build)."""


class WarehouseResource(dg.ConfigurableResource):
    """Where landed data and the marts live. Empty url: VALUEVERSE_WAREHOUSE's rule (the
    embedded DuckDB `valueverse.duckdb` in the working directory when that is unset)."""

    url: str = ""

    def config(self) -> WarehouseConfig:
        return resolve(self.url or None)


def warehouse_resource_from_env() -> WarehouseResource:
    """The resource wired to the environment: `dg.EnvVar` keeps the (possibly secret) URL out
    of the UI and the run config; unset falls back to the embedded default."""
    import os

    if os.environ.get("VALUEVERSE_WAREHOUSE"):
        return WarehouseResource(url=dg.EnvVar("VALUEVERSE_WAREHOUSE"))
    return WarehouseResource()


def fetch_all(config: WarehouseConfig, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """Rows of one read-only query. `?` marks parameters on both backends. A missing DuckDB
    file reads as an empty warehouse (raises WarehouseError with that text); a DuckDB file
    held by a writer raises WarehouseBusy so callers can skip instead of failing."""
    if config.kind == "duckdb":
        import duckdb

        assert config.duckdb_path is not None
        if not config.duckdb_path.exists():
            raise WarehouseError(f"{config.duckdb_path} does not exist yet")
        try:
            con = duckdb.connect(str(config.duckdb_path), read_only=True)
        except duckdb.IOException as exc:
            raise WarehouseBusy(f"{config.duckdb_path} is busy: {exc}") from None
        except duckdb.ConnectionException as exc:  # opened read-write elsewhere in-process
            raise WarehouseBusy(f"{config.duckdb_path} is busy: {exc}") from None
        try:
            return [tuple(row) for row in con.execute(sql, list(params)).fetchall()]
        finally:
            con.close()
    with connect_postgres(config, autocommit=True) as conn:
        return [tuple(row) for row in conn.execute(sql.replace("?", "%s"), params).fetchall()]


def table_exists(config: WarehouseConfig, schema: str, table: str) -> bool:
    rows = fetch_all(
        config,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    )
    return bool(rows and rows[0][0])
