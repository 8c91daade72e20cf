"""How dbt nodes become Dagster assets.

The dbt sources are the tables the landing side writes, so they map onto the two Python
assets that write them (`catalog`, `landed_events`) and the lineage is one graph from the
catalog YAML and the Kafka topic to the invoices. Models are keyed by their schema and name
(`marts/invoices`), the name analysts query, and grouped by layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

CATALOG_KEY = dg.AssetKey("catalog")
LANDED_EVENTS_KEY = dg.AssetKey("landed_events")


def source_asset_key(table: str) -> dg.AssetKey:
    """raw.catalog_* are written by the catalog load; everything else by landing."""
    return CATALOG_KEY if table.startswith("catalog_") else LANDED_EVENTS_KEY


class ValueVerseTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        # dbt tests as asset checks is the dagster-dbt 0.29 default; stated so it stays so
        super().__init__(
            DagsterDbtTranslatorSettings(
                enable_asset_checks=True,
                # several raw tables are one upstream asset (catalog, landed_events)
                enable_duplicate_source_asset_keys=True,
            )
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type == "source":
            if dbt_resource_props["source_name"] == "raw":
                return source_asset_key(dbt_resource_props["name"])
            return super().get_asset_key(dbt_resource_props)
        schema = dbt_resource_props.get("config", {}).get("schema") or "analytics"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        schema = dbt_resource_props.get("config", {}).get("schema")
        return f"dbt_{schema}" if schema else "dbt"
