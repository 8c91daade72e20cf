"""`catalog`: the product catalog in the warehouse (raw.catalog_* tables).

With VALUEVERSE_CATALOG naming a YAML file, the asset loads it through
`ingestion.catalog.loader.load_catalog` (validated first, appended atomically as a new version, a
no-op when the file equals the newest version). Without it, catalogs are loaded by hand
(`valueverse catalog load`) and the asset only reports the version in the warehouse, so the
graph and its metadata stay true either way.
"""

import os
from pathlib import Path

import dagster as dg

from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource, table_exists
from ingestion.warehouse import WarehouseConfig, fetch

_TABLES = (
    "catalog_metrics",
    "catalog_plans",
    "catalog_charges",
    "catalog_charge_tiers",
    "catalog_charge_filters",
    "catalog_customers",
    "catalog_discounts",
    "catalog_subscriptions",
)


def current_catalog(config: WarehouseConfig) -> tuple[int | None, dict[str, int]]:
    """The newest catalog version and its row counts per table (None, {} before any load)."""
    if not table_exists(config, "raw", "catalog_versions"):
        return None, {}
    version = fetch(config, "SELECT max(catalog_version) FROM raw.catalog_versions")[0][0]
    if version is None:
        return None, {}
    counts_sql = " UNION ALL ".join(
        f"SELECT '{table}', count(*) FROM raw.{table} WHERE catalog_version = %s"
        for table in _TABLES
    )
    rows = fetch(config, counts_sql, [version] * len(_TABLES))
    return int(version), {str(name): int(count) for name, count in rows}


@dg.asset(
    group_name="landing",
    pool=WAREHOUSE_POOL,
    kinds={"python", "yaml"},
    description="The versioned product catalog (raw.catalog_* tables).",
)
def catalog(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    from ingestion.catalog.loader import load_catalog

    config = warehouse.config()
    source = os.environ.get("VALUEVERSE_CATALOG")
    version: int | None
    if source:
        result = load_catalog(config, Path(source))
        version, counts, changed = result.version, dict(result.counts), result.changed
        mode = "loaded" if changed else "unchanged (no-op)"
    else:
        version, counts = current_catalog(config)
        changed, mode = False, "observed (VALUEVERSE_CATALOG unset)"
    context.log.info(f"catalog {mode}: version {version}, {counts}")
    return dg.MaterializeResult(
        metadata={
            "catalog_version": dg.MetadataValue.int(version) if version is not None else None,
            "changed": changed,
            "mode": mode,
            "source": dg.MetadataValue.path(source) if source else None,
            **{f"rows.{table.removeprefix('catalog_')}": n for table, n in counts.items()},
        },
        data_version=dg.DataVersion(str(version)) if version is not None else None,
    )
