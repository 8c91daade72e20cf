"""The warehouse as a Dagster resource, and a table check for sensors and metadata.

The URL comes from VALUEVERSE_WAREHOUSE and is parsed by `ingestion.warehouse.resolve`, the
same function every `valueverse` command uses, so Dagster and the CLI always agree on where the
data is. Reads open DuckDB read-only and close at once: DuckDB allows one writing process per
file, and a sensor that kept the file open would block the next landing or dbt build.
"""

from __future__ import annotations

import dagster as dg

from ingestion.warehouse import WarehouseConfig, fetch, resolve

# Every step that touches the warehouse runs in this pool, limited to one step at a time by the
# generated dagster.yaml (lib/instance.py): DuckDB allows one writing process and refuses
# readers while it writes, and two dbt builds would race on one target folder.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """Where landed data and the marts live: VALUEVERSE_WAREHOUSE (`resolve`'s rule), read
    when a step runs. No field on purpose: whoever launches a run in the UI can set any
    resource field, and a warehouse URL says where billing data is read and written (and may
    carry a password), so it comes from the deployment's environment only."""

    def config(self) -> WarehouseConfig:
        return resolve(None)


def table_exists(config: WarehouseConfig, schema: str, table: str) -> bool:
    """Read-only, like every read here (`ingestion.warehouse.fetch`): a missing DuckDB file
    raises WarehouseMissing and one held by a writer WarehouseBusy, so a sensor can skip."""
    rows = fetch(
        config,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s"
        " AND table_name = %s",
        [schema, table],
    )
    return bool(rows and rows[0][0])
