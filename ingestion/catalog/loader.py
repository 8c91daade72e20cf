"""`valueverse catalog load`: validate a catalog YAML and append it as a new version.

dbt/docs/contract.md section 2 is the contract. Validation is all-or-nothing
and reports every problem at once (one per line, each naming the file, line
and item), because a catalog is edited by hand and a fix-one-rerun loop is
slow. The rows written are exactly the raw.catalog_* tables of
`ingestion.landing.raw_ddl`; those columns are the contract with the dbt staging models.

Versions append, never overwrite: old invoices stay explainable by the
catalog they were rated with. Loading the newest version's exact bytes again
changes nothing, so re-running a scenario is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ingestion.catalog.rules import CatalogLoader, walk
from ingestion.landing import raw_ddl
from ingestion.warehouse import WarehouseConfig, WarehouseError, connect_duckdb, connect_postgres

# Columns of each raw table after `catalog_version`, in insert order.
_COLUMNS = {
    "catalog_metrics": "metric_code aggregation field property_name",
    "catalog_plans": "plan_code currency billing_interval fixed_fee minimum_commitment",
    "catalog_charges": "plan_code charge_index metric_code model unit_price package_size "
    "package_price free_units filter_count",
    "catalog_charge_tiers": "plan_code charge_index tier_index lower_bound up_to unit_price "
    "flat_fee",
    "catalog_charge_filters": "plan_code charge_index property_name property_value",
    "catalog_customers": "customer_id currency tax_rate",
    "catalog_discounts": "customer_id discount_index percent_off amount_off start_date end_date",
    "catalog_subscriptions": "subscription_id customer_id plan_code start_date end_date "
    "billing_anchor",
    "catalog_thresholds": "threshold_id plan_code subscription_id kind metric_code threshold_value",
}
TABLES: dict[str, tuple[str, ...]] = {
    table: tuple(cols.split()) for table, cols in _COLUMNS.items()
}

# Serializes catalog loads on PostgreSQL so two cannot take the same version number.
_PG_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"valueverse:catalog_load").digest()[:8], "big", signed=True
)


class CatalogError(Exception):
    """A catalog that cannot be loaded; the message names every problem and where it is."""


@dataclass(frozen=True)
class Catalog:
    """A validated catalog: table name -> rows (columns as in TABLES, no version yet)."""

    rows: dict[str, list[tuple[Any, ...]]]

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.rows.items()}


@dataclass(frozen=True)
class LoadResult:
    version: int  # the newest catalog version after the load
    changed: bool  # False when the file equals the newest version, byte for byte
    counts: dict[str, int] = field(default_factory=dict)


# A bound on what one catalog file may cost to read (the largest real catalogs are a few
# hundred kilobytes); CatalogLoader bounds its nesting and its numbers.
MAX_CATALOG_BYTES = 16 * 1024 * 1024


def parse_catalog(text: str, source: str) -> Catalog:
    """Parse and validate a catalog document; raise CatalogError listing every problem."""
    if len(text) > MAX_CATALOG_BYTES:
        raise CatalogError(
            f"{source}: the catalog is {len(text)} characters, the limit is {MAX_CATALOG_BYTES}"
        )
    try:
        # bandit: a SafeLoader subclass (rules.CatalogLoader)
        doc = yaml.load(text, Loader=CatalogLoader)  # noqa: S506  # nosec B506
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise CatalogError(f"{where}: YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: YAML error: {exc}") from None
    rows, problems = walk(doc)
    if problems:
        problems.sort(key=lambda problem: problem[0])  # stable: document order within a line
        raise CatalogError("\n".join(f"{source}:{line}: {message}" for line, message in problems))
    return Catalog({table: rows.get(table, []) for table in TABLES})


def load_catalog(config: WarehouseConfig, path: Path) -> LoadResult:
    """Validate the file at `path` and append it as the next catalog version, atomically.

    Validation happens before the warehouse is touched, so a bad file writes
    nothing. The schema DDL, the version check and the inserts share one
    transaction: a crash leaves either the whole new version or none of it.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc.strerror or exc}") from None
    try:
        document = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    catalog = parse_catalog(document, str(path))
    digest = hashlib.sha256(data).hexdigest()
    version_row = (digest, str(Path(path).resolve()), document)
    if config.kind == "duckdb":
        return _load_duckdb(config, catalog, version_row)
    return _load_postgres(config, catalog, version_row)


def _load_duckdb(
    config: WarehouseConfig, catalog: Catalog, version_row: tuple[str, str, str]
) -> LoadResult:
    import duckdb

    con = connect_duckdb(config)
    try:
        con.begin()
        con.execute(raw_ddl.duckdb_ddl())
        result = _write(con, "?", catalog, version_row)
        con.commit()
        return result
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):  # nothing to roll back if BEGIN failed
            con.rollback()
        raise WarehouseError(f"cannot load the catalog into {config.redacted()}: {exc}") from None
    finally:
        con.close()


def _load_postgres(
    config: WarehouseConfig, catalog: Catalog, version_row: tuple[str, str, str]
) -> LoadResult:
    import psycopg
    from psycopg import errors

    from ingestion.landing.sinks.postgres import ensure_raw_schema

    for attempt in range(3):
        try:
            with connect_postgres(config) as conn, conn.cursor() as cur:
                # Lock first: the version number is max+1, and concurrent
                # CREATE ... IF NOT EXISTS of one table can collide as well.
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
                ensure_raw_schema(conn)
                return _write(cur, "%s", catalog, version_row)
        except (errors.UniqueViolation, errors.DuplicateObject, errors.DuplicateTable):
            # Another component created the raw schema at the same moment; the
            # transaction rolled back, so running it again is safe.
            if attempt == 2:
                raise WarehouseError(
                    f"cannot create the raw schema in {config.redacted()}"
                ) from None
        except psycopg.Error as exc:
            raise WarehouseError(
                f"cannot load the catalog into {config.redacted()}: {exc}"
            ) from None
    raise AssertionError("unreachable")


def _write(cur: Any, mark: str, catalog: Catalog, version_row: tuple[str, str, str]) -> LoadResult:
    """Inside an open transaction: append `catalog` as a new version unless it is the newest."""
    digest = version_row[0]
    cur.execute(
        "SELECT catalog_version, content_sha256 FROM raw.catalog_versions "
        "ORDER BY catalog_version DESC LIMIT 1"
    )
    newest = cur.fetchone()
    counts = catalog.counts()
    if newest is not None and newest[1] == digest:
        return LoadResult(int(newest[0]), False, counts)
    version = 1 if newest is None else int(newest[0]) + 1
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    cur.execute(
        "INSERT INTO raw.catalog_versions "
        "(catalog_version, loaded_at, content_sha256, source, document) "
        f"VALUES ({', '.join([mark] * 5)})",
        (version, loaded_at, *version_row),
    )
    for table, columns in TABLES.items():
        rows = [(version, *row) for row in catalog.rows[table]]
        if rows:
            cur.executemany(
                f"INSERT INTO raw.{table} (catalog_version, {', '.join(columns)}) "
                f"VALUES ({', '.join([mark] * (len(columns) + 1))})",
                rows,
            )
    return LoadResult(version, True, counts)
