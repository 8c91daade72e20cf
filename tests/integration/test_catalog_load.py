"""`load_catalog` on real warehouses: versions append, reloads are no-ops, errors write nothing.

Runs on an embedded DuckDB file and on a scratch PostgreSQL database (created
and dropped here), because the two must behave identically for the dbt models.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingestion.catalog.loader import TABLES, CatalogError, LoadResult, load_catalog
from ingestion.warehouse import WarehouseConfig, connect_duckdb, connect_postgres, resolve

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

CATALOG = """\
metrics:
- code: api_calls
  aggregation: sum
- code: users
  aggregation: unique_count
  field: properties.user_id
plans:
- code: starter
  currency: USD
  interval: month
  fixed_fee: '49.00'
  minimum_commitment: '12345678901234567890123456.123456789012'
  charges:
  - metric: api_calls
    model: per_unit
    unit_price: '0.000000000001'
    filters:
      region: eu
      tier: 2.50
  - metric: api_calls
    model: graduated
    tiers:
    - up_to: 1000
      unit_price: '0'
    - up_to: null
      unit_price: '0.005'
      flat_fee: '10'
  - metric: users
    model: package
    package_size: 10
    package_price: '5.00'
customers:
- id: cus_acme
  currency: USD
  tax_rate: '0.20'
  discounts:
  - amount_off: '2.5'
    start: '2026-10-01'
subscriptions:
- id: sub_acme_1
  customer: cus_acme
  plan: starter
  start: '2026-09-01'
  end: '2026-10-16'
- id: sub_acme_2
  customer: cus_acme
  plan: starter
  start: 2026-10-16
  billing_anchor: anniversary
"""

EXPECTED_COUNTS = {
    "catalog_metrics": 2,
    "catalog_plans": 1,
    "catalog_charges": 3,
    "catalog_charge_tiers": 2,
    "catalog_charge_filters": 2,
    "catalog_customers": 1,
    "catalog_discounts": 1,
    "catalog_subscriptions": 2,
    "catalog_thresholds": 0,
}


class Warehouse:
    """Runs a query on the backend under test; a fresh connection each time, like the CLI."""

    def __init__(self, config: WarehouseConfig) -> None:
        self.config = config

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.config.kind == "duckdb":
            con = connect_duckdb(self.config)
            try:
                return [tuple(row) for row in con.execute(sql).fetchall()]
            finally:
                con.close()
        with connect_postgres(self.config) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    def versions(self) -> list[int]:
        sql = "SELECT catalog_version FROM raw.catalog_versions ORDER BY 1"
        return [row[0] for row in self.rows(sql)]

    def counts(self, version: int) -> dict[str, int]:
        return {
            table: self.rows(f"SELECT count(*) FROM raw.{table} WHERE catalog_version = {version}")[
                0
            ][0]
            for table in TABLES
        }

    def snapshot(self) -> dict[str, list[str]]:
        """Every catalog row of every table, comparable across calls."""
        tables = ["catalog_versions", *TABLES]
        return {
            table: sorted(map(repr, self.rows(f"SELECT * FROM raw.{table}"))) for table in tables
        }


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(resolve(f"duckdb://{tmp_path / 'warehouse.duckdb'}"))


@pytest.fixture
def postgres_warehouse() -> Iterator[Warehouse]:
    import psycopg

    name = f"vv_catalog_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield Warehouse(resolve(f"postgresql://postgres@127.0.0.1:5432/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    return request.getfixturevalue(f"{request.param}_warehouse")


def write(tmp_path: Path, text: str, name: str = "catalog.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_first_load_creates_version_1(warehouse: Warehouse, tmp_path: Path) -> None:
    path = write(tmp_path, CATALOG)
    before = datetime.now(UTC).replace(tzinfo=None)
    result = load_catalog(warehouse.config, path)
    assert result == LoadResult(version=1, changed=True, counts=EXPECTED_COUNTS)
    assert warehouse.versions() == [1]
    assert warehouse.counts(1) == EXPECTED_COUNTS
    [(loaded_at, sha, source, document)] = warehouse.rows(
        "SELECT loaded_at, content_sha256, source, document FROM raw.catalog_versions"
    )
    assert before - timedelta(seconds=1) <= loaded_at <= datetime.now(UTC).replace(tzinfo=None)
    assert sha == hashlib.sha256(CATALOG.encode()).hexdigest()
    assert source == str(path.resolve())
    assert document == CATALOG


def test_values_land_exactly(warehouse: Warehouse, tmp_path: Path) -> None:
    load_catalog(warehouse.config, write(tmp_path, CATALOG))
    [(fixed_fee, minimum)] = warehouse.rows(
        "SELECT fixed_fee, minimum_commitment FROM raw.catalog_plans"
    )
    assert fixed_fee == Decimal("49")
    assert minimum == Decimal("12345678901234567890123456.123456789012")
    charges = warehouse.rows(
        "SELECT charge_index, metric_code, model, unit_price, package_size, package_price, "
        "free_units, filter_count FROM raw.catalog_charges ORDER BY charge_index"
    )
    assert charges == [
        (1, "api_calls", "per_unit", Decimal("1E-12"), None, None, None, 2),
        (2, "api_calls", "graduated", None, None, None, None, 0),
        (3, "users", "package", None, Decimal(10), Decimal(5), Decimal(0), 0),
    ]
    assert warehouse.rows(
        "SELECT tier_index, lower_bound, up_to, unit_price, flat_fee "
        "FROM raw.catalog_charge_tiers ORDER BY tier_index"
    ) == [
        (1, Decimal(0), Decimal(1000), Decimal(0), Decimal(0)),
        (2, Decimal(1000), None, Decimal("0.005"), Decimal(10)),
    ]
    assert sorted(
        warehouse.rows("SELECT property_name, property_value FROM raw.catalog_charge_filters")
    ) == [("region", "eu"), ("tier", "2.5")]
    assert warehouse.rows(
        "SELECT customer_id, percent_off, amount_off, start_date, end_date "
        "FROM raw.catalog_discounts"
    ) == [("cus_acme", None, Decimal("2.5"), date(2026, 10, 1), None)]
    assert warehouse.rows(
        "SELECT subscription_id, start_date, end_date, billing_anchor "
        "FROM raw.catalog_subscriptions ORDER BY 1"
    ) == [
        ("sub_acme_1", date(2026, 9, 1), date(2026, 10, 16), "calendar"),
        ("sub_acme_2", date(2026, 10, 16), None, "anniversary"),
    ]


def test_same_file_again_changes_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    path = write(tmp_path, CATALOG)
    load_catalog(warehouse.config, path)
    before = warehouse.snapshot()
    again = load_catalog(warehouse.config, path)
    assert again == LoadResult(version=1, changed=False, counts=EXPECTED_COUNTS)
    assert warehouse.versions() == [1]
    assert warehouse.snapshot() == before


def test_modified_file_appends_version_2(warehouse: Warehouse, tmp_path: Path) -> None:
    path = write(tmp_path, CATALOG)
    load_catalog(warehouse.config, path)
    modified = CATALOG.replace("  fixed_fee: '49.00'\n", "  fixed_fee: '59.00'\n")
    modified += "- id: sub_other\n  customer: cus_other\n  plan: starter\n  start: '2026-11-01'\n"
    modified = modified.replace(
        "subscriptions:\n", "- id: cus_other\n  currency: USD\nsubscriptions:\n"
    )
    write(tmp_path, modified)
    result = load_catalog(warehouse.config, path)
    assert (result.version, result.changed) == (2, True)
    assert warehouse.versions() == [1, 2]
    assert warehouse.counts(1) == EXPECTED_COUNTS  # version 1 is kept, untouched
    assert warehouse.counts(2) == {
        **EXPECTED_COUNTS,
        "catalog_customers": 2,
        "catalog_subscriptions": 3,
    }
    assert warehouse.rows(
        "SELECT catalog_version, fixed_fee FROM raw.catalog_plans ORDER BY 1"
    ) == [(1, Decimal(49)), (2, Decimal(59))]
    # Going back to the first content is a change relative to the newest: version 3.
    write(tmp_path, CATALOG)
    assert load_catalog(warehouse.config, path).version == 3


def test_invalid_file_writes_nothing(warehouse: Warehouse, tmp_path: Path) -> None:
    path = write(tmp_path, CATALOG)
    load_catalog(warehouse.config, path)
    before = warehouse.snapshot()
    write(tmp_path, CATALOG.replace("  plan: starter\n", "  plan: gold\n", 1))
    with pytest.raises(CatalogError, match="subscription 'sub_acme_1': unknown plan 'gold'"):
        load_catalog(warehouse.config, path)
    write(tmp_path, CATALOG + "  end: [\n")
    with pytest.raises(CatalogError, match="YAML syntax error"):
        load_catalog(warehouse.config, path)
    assert warehouse.snapshot() == before


def test_invalid_file_on_a_fresh_warehouse_touches_nothing(tmp_path: Path) -> None:
    db = tmp_path / "fresh.duckdb"
    with pytest.raises(CatalogError):
        load_catalog(resolve(f"duckdb://{db}"), write(tmp_path, "metrics: 5\n"))
    assert not db.exists()


def test_missing_or_unreadable_file(tmp_path: Path) -> None:
    config = resolve(f"duckdb://{tmp_path / 'w.duckdb'}")
    with pytest.raises(CatalogError, match="nope.yml: cannot read the catalog"):
        load_catalog(config, tmp_path / "nope.yml")
    with pytest.raises(CatalogError, match="cannot read the catalog"):
        load_catalog(config, tmp_path)  # a directory
    bad = tmp_path / "latin1.yml"
    bad.write_bytes("metrics: []\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(config, bad)


@pytest.mark.postgres
def test_concurrent_loads_get_distinct_versions(
    postgres_warehouse: Warehouse, tmp_path: Path
) -> None:
    paths = [
        write(tmp_path, CATALOG.replace("'49.00'", f"'{40 + n}.00'"), f"c{n}.yml") for n in range(4)
    ]
    results: list[LoadResult] = []
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        try:
            results.append(load_catalog(postgres_warehouse.config, path))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(result.version for result in results) == [1, 2, 3, 4]
    assert postgres_warehouse.versions() == [1, 2, 3, 4]
    for version in range(1, 5):
        assert postgres_warehouse.counts(version) == EXPECTED_COUNTS
