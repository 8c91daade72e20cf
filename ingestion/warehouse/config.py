"""Which warehouse to use: one environment variable for every component.

VALUEVERSE_WAREHOUSE chooses the backend for the CLI, the ingestion service, dbt, Dagster and
the dashboards: `duckdb:///abs/path.duckdb` or `postgresql://user:pass@host:port/db`.
Unset: an embedded DuckDB file `valueverse.duckdb` in the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ingestion.warehouse.errors import ConfigError

DEFAULT_DUCKDB_FILE = "valueverse.duckdb"


@dataclass(frozen=True)
class WarehouseConfig:
    kind: str  # "duckdb" | "postgres"
    url: str
    duckdb_path: Path | None = None

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
    """Parse `url`, else VALUEVERSE_WAREHOUSE, else the default DuckDB file (ConfigError when
    the URL cannot be used)."""
    url = url or os.environ.get("VALUEVERSE_WAREHOUSE") or ""
    if not url:
        path = Path.cwd() / DEFAULT_DUCKDB_FILE
        return WarehouseConfig("duckdb", f"duckdb:///{path}", path)
    if url.startswith("duckdb://"):
        raw_path = url[len("duckdb://") :]
        if not raw_path.startswith("/"):
            raise ConfigError(f"DuckDB URL must hold an absolute path: {url!r}")
        return WarehouseConfig("duckdb", url, Path(raw_path))
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        normalized = "postgresql://" + url.split("://", 1)[1]
        parts = urlsplit(normalized)
        if not parts.path.strip("/"):
            raise ConfigError(f"PostgreSQL URL must name a database: {url!r}")
        return WarehouseConfig("postgres", normalized)
    raise ConfigError(
        f"VALUEVERSE_WAREHOUSE must be duckdb:///abs/path.duckdb or postgresql://…, got {url!r}"
    )


def postgres_params(config: WarehouseConfig) -> dict[str, str]:
    """Connection parameters (dbt's profile reads these)."""
    parts = urlsplit(config.url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/"),
    }
