"""Which warehouse to use, and how to open it.

One environment variable, VALUEVERSE_WAREHOUSE, chooses the backend for every
component (CLI, ingestion service, dbt, Dagster, dashboards):
`duckdb:///abs/path.duckdb` or `postgresql://user:pass@host:port/db`.
Unset: an embedded DuckDB file `valueverse.duckdb` in the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DUCKDB_FILE = "valueverse.duckdb"


class WarehouseError(Exception):
    """A warehouse URL or connection problem, reported to the user without a traceback."""


@dataclass(frozen=True)
class WarehouseConfig:
    kind: str  # "duckdb" | "postgres"
    url: str
    duckdb_path: Path | None = None

    @property
    def dbt_target(self) -> str:
        return self.kind

    def redacted(self) -> str:
        """The URL with any password removed, for messages and logs."""
        if self.kind == "duckdb":
            return self.url
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.url


def resolve(url: str | None = None) -> WarehouseConfig:
    """Parse `url`, else VALUEVERSE_WAREHOUSE, else the default DuckDB file."""
    url = url or os.environ.get("VALUEVERSE_WAREHOUSE") or ""
    if not url:
        path = Path.cwd() / DEFAULT_DUCKDB_FILE
        return WarehouseConfig("duckdb", f"duckdb:///{path}", path)
    if url.startswith("duckdb://"):
        raw_path = url[len("duckdb://") :]
        if not raw_path.startswith("/"):
            raise WarehouseError(f"DuckDB URL must hold an absolute path: {url!r}")
        return WarehouseConfig("duckdb", url, Path(raw_path))
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        normalized = "postgresql://" + url.split("://", 1)[1]
        parts = urlsplit(normalized)
        if not parts.path.strip("/"):
            raise WarehouseError(f"PostgreSQL URL must name a database: {url!r}")
        return WarehouseConfig("postgres", normalized)
    raise WarehouseError(
        f"VALUEVERSE_WAREHOUSE must be duckdb:///abs/path.duckdb or postgresql://…, got {url!r}"
    )


def postgres_params(config: WarehouseConfig) -> dict[str, str]:
    """Connection parameters (dbt's profile and the dashboards use these)."""
    parts = urlsplit(config.url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/"),
    }


def connect_duckdb(config: WarehouseConfig):
    import duckdb

    assert config.duckdb_path is not None
    config.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(config.duckdb_path))
    except duckdb.IOException as exc:
        raise WarehouseError(f"cannot open DuckDB warehouse {config.duckdb_path}: {exc}") from None


def connect_postgres(config: WarehouseConfig, autocommit: bool = False):
    import psycopg

    try:
        return psycopg.connect(config.url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise WarehouseError(f"cannot connect to PostgreSQL {config.redacted()}: {exc}") from None
