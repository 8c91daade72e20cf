"""Which warehouse to use: one environment variable for every component.

VALUEVERSE_WAREHOUSE chooses the backend for the CLI, the ingestion service, dbt, Dagster and
the dashboards: `duckdb:///abs/path.duckdb` or `postgresql://user:pass@host:port/db`.
Unset: an embedded DuckDB file `valueverse.duckdb` in the working directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ingestion.warehouse.errors import ConfigError

DEFAULT_DUCKDB_FILE = "valueverse.duckdb"
# the password of `scheme://user:password@host`, and `password=` in a query string or a
# key-value connection string
_SECRETS = re.compile(r"(?<=://)([^/@?#:]*):[^?#\s]*@|((?:^|[?&\s])password=)[^&\s]*", re.I)


def redact_url(url: str) -> str:
    """`url` with any password replaced by ***, for every message and log line that shows a
    URL (also a malformed one, which is shown so that its owner can find the mistake)."""
    return _SECRETS.sub(lambda m: f"{m[1]}:***@" if m[1] is not None else f"{m[2]}***", url)


@dataclass(frozen=True)
class WarehouseConfig:
    kind: str  # "duckdb" | "postgres"
    url: str
    duckdb_path: Path | None = None

    def redacted(self) -> str:
        """The URL with any password removed, for messages and logs."""
        return redact_url(self.url)


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
            raise ConfigError(f"DuckDB URL must hold an absolute path: {redact_url(url)!r}")
        return WarehouseConfig("duckdb", url, Path(raw_path))
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        normalized = "postgresql://" + url.split("://", 1)[1]
        parts = urlsplit(normalized)
        if not parts.path.strip("/"):
            raise ConfigError(f"PostgreSQL URL must name a database: {redact_url(url)!r}")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            raise ConfigError(f"PostgreSQL URL has a bad port: {redact_url(url)!r}") from None
        return WarehouseConfig("postgres", normalized)
    raise ConfigError(
        "VALUEVERSE_WAREHOUSE must be duckdb:///abs/path.duckdb or postgresql://…, "
        f"got {redact_url(url)!r}"
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
