"""The one warehouse access layer: which warehouse (config.py), how to open it and run SQL on
it (session.py), what can go wrong (errors.py), and checked numbers from the environment
(settings.py).

Every component reads and writes the warehouse through here, with `%s` placeholders on both
backends and `transaction()` for the write paths. Only the landing sinks use the raw
connections (`connect_duckdb`, `connect_postgres`) directly: their binary COPY and Arrow
appends are the hot path.
"""

from ingestion.warehouse.config import (
    DEFAULT_DUCKDB_FILE,
    WarehouseConfig,
    postgres_params,
    redact_url,
    resolve,
)
from ingestion.warehouse.errors import (
    ConfigError,
    StoreDamaged,
    UsageError,
    ValueVerseError,
    WarehouseBusy,
    WarehouseError,
    WarehouseMissing,
)
from ingestion.warehouse.session import (
    Session,
    connect,
    connect_duckdb,
    connect_postgres,
    driver_errors,
    duckdb_sql,
    fetch,
    is_duplicate_key,
    is_permission_denied,
    is_undefined,
    open_connection,
    transaction,
)
from ingestion.warehouse.settings import env_decimal, env_int, refuse_future

__all__ = [
    "DEFAULT_DUCKDB_FILE",
    "ConfigError",
    "Session",
    "StoreDamaged",
    "UsageError",
    "ValueVerseError",
    "WarehouseBusy",
    "WarehouseConfig",
    "WarehouseError",
    "WarehouseMissing",
    "connect",
    "connect_duckdb",
    "connect_postgres",
    "driver_errors",
    "env_decimal",
    "env_int",
    "duckdb_sql",
    "fetch",
    "is_duplicate_key",
    "is_permission_denied",
    "is_undefined",
    "open_connection",
    "postgres_params",
    "redact_url",
    "refuse_future",
    "resolve",
    "transaction",
]
