"""Every dbt model, seed and test, as Dagster assets and asset checks (dagster-dbt).

One `dbt build` runs them, with exactly the arguments and connection environment of
`valueverse build` (`ingestion.billing.dbt_runner.dbt_args` / `dbt_env`: profiles, target,
target path,
vars, the run's as_of recorded in the warehouse), after the same warehouse preparation, so a
Dagster build and a CLI build are the same build. The build is
not partitioned: the models are incremental and each build rates what landed since the last.
dbt tests arrive as asset checks; a failing test fails the step, so nothing downstream (data
quality, finalization) runs on a bad build.

dagster-dbt passes its own `--select fqn:*` for a build of every asset, which
`record_verified_build` (dbt/macros/incremental.sql) counts as a whole build, so a verified
Dagster build scopes the next build's event-sized tests just as a CLI build does. The CLI's
`skipped_selection` is not applied (dagster-dbt owns the selection of a run): a Dagster build
also rebuilds the staging views and reruns the unit tests.

After the build, usage and spend thresholds are evaluated on the fresh marts, as after
`valueverse build` (ingestion/notifications/thresholds.py).
"""

import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_project.lib.as_of import AsOfResource
from dagster_project.lib.dbt_project import (
    DBT_PROJECT_DIR,
    dbt_executable,
    dbt_project,
    prepare_warehouse,
)
from dagster_project.lib.translator import ValueVerseTranslator
from dagster_project.lib.warehouse import WAREHOUSE_POOL, WarehouseResource

# The manifest is read once, when the definitions load (lib/dbt_project.py).
project = dbt_project()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=os.fspath(DBT_PROJECT_DIR),
        profiles_dir=os.fspath(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )


@dbt_assets(
    manifest=project.manifest_path,
    project=project,
    dagster_dbt_translator=ValueVerseTranslator(),
    pool=WAREHOUSE_POOL,
)
def valueverse_dbt_assets(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    as_of: AsOfResource,
) -> Iterator[Any]:
    from ingestion.billing.dbt_runner import _release_connections, dbt_args, dbt_env, target_dir

    config = warehouse.config()
    prepare_warehouse(config)
    # profiles.yml reads the connection from the environment; dagster-dbt passes os.environ on
    os.environ.update(dbt_env(config))
    day = as_of.date()
    context.log.info(f"dbt build as of {day} on {config.redacted()}")
    invocation = dbt.cli(
        dbt_args(config, "build", day), context=context, target_path=target_dir(config)
    )
    try:
        yield from invocation.stream()
    finally:
        # dagster-dbt registers a dbt adapter in this process; dbt-duckdb would keep the file
        # open, and the next step in this process could not open it read-only
        _release_connections()
    # after a build that passed (a failed one raised above): the thresholds it crossed
    from ingestion.notifications.thresholds import evaluate_thresholds

    recorded = evaluate_thresholds(config, day)
    context.log.info(f"{recorded} threshold notification(s) recorded")
