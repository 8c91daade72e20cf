"""Rating and invoicing: `valueverse build` runs dbt, and only that.

The billing rules live in the dbt project (`dbt/`), not here: `build` only runs `dbt build`
in-process against the configured warehouse (deciding what a verified earlier build lets it
leave out), and Dagster's dbt assets and `valueverse docs` reuse its arguments and environment.
Exporting the invoices it builds is ingestion/billing/export.py's job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ingestion.billing.payments_store import ensure_payments_store
from ingestion.job_telemetry import job_run
from ingestion.landing.sinks import backends
from ingestion.untraced import untraced
from ingestion.warehouse import (
    WarehouseConfig,
    connect,
    driver_errors,
    postgres_params,
    transaction,
)

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"


def dbt_env(config: WarehouseConfig) -> dict[str, str]:
    """The environment dbt/profiles.yml reads its connection from (env_var())."""
    if config.kind == "duckdb":
        assert config.duckdb_path is not None
        return {
            "VALUEVERSE_DBT_TARGET": "duckdb",
            "VALUEVERSE_DUCKDB_PATH": str(config.duckdb_path),
        }
    params = postgres_params(config)
    # No JIT compilation for dbt's sessions: the planner's costs for the event-sized queries
    # pass jit_above_cost, and compiling them takes ~1 s per query where running them takes
    # milliseconds to a second (dbt/DECISIONLOG.md, "PostgreSQL query plans").
    options = os.environ.get("PGOPTIONS", "")
    return {
        "PGOPTIONS": f"{options} -c jit=off".strip() if "jit=" not in options else options,
        "VALUEVERSE_DBT_TARGET": "postgres",
        "VALUEVERSE_PG_HOST": params["host"],
        "VALUEVERSE_PG_PORT": params["port"],
        "VALUEVERSE_PG_USER": params["user"],
        "VALUEVERSE_PG_PASSWORD": params["password"],
        "VALUEVERSE_PG_DBNAME": params["dbname"],
    }


def target_dir(config: WarehouseConfig) -> Path:
    """dbt's target path for `config`'s backend. VALUEVERSE_DBT_TARGET_DIR moves the root so that
    concurrent processes on one checkout (parallel test runs, Dagster beside the CLI) keep their
    own dbt state instead of racing on one target/ folder."""
    root = Path(os.environ.get("VALUEVERSE_DBT_TARGET_DIR") or DBT_DIR / "target")
    return root / config.kind


def dbt_args(
    config: WarehouseConfig,
    command: str,
    as_of: date,
    extra_vars: dict[str, Any] | None = None,
) -> list[str]:
    """Arguments for one dbt command against `config`, with `as_of` recorded in the warehouse
    for the models to read (record_run_as_of). Each target keeps its own target path (switching
    targets in one path would throw away dbt's partial-parse cache)."""
    record_run_as_of(config, as_of)
    target_path = target_dir(config)
    return [
        command,
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target",
        config.kind,
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path / "logs"),
        "--vars",
        # the same vars every time (a change of vars makes dbt parse the whole project again
        # instead of reusing target/<kind>/partial_parse.msgpack): as_of is not one of them
        json.dumps({"code_version": code_version(), **(extra_vars or {})}),
    ]


RUN_CONTEXT = "analytics.valueverse_run_context"


def record_run_as_of(config: WarehouseConfig, as_of: date) -> None:
    """Write the invoicing date the next dbt command reads (dbt/macros/as_of.sql).

    In the warehouse rather than a dbt var so that a new date each day does not make dbt parse
    the whole project again. One dbt command at a time per warehouse, as before."""
    with transaction(config) as db:
        db.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        db.execute(f"CREATE TABLE IF NOT EXISTS {RUN_CONTEXT} (as_of DATE NOT NULL)")
        db.execute(f"DELETE FROM {RUN_CONTEXT}")
        db.execute(f"INSERT INTO {RUN_CONTEXT} VALUES (%s)", [as_of])


_PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "tests", "seeds")
_CODE_PACKAGES = ("dbt-core", "dbt-adapters", "dbt-duckdb", "dbt-postgres", "duckdb")


def code_version() -> str:
    """A hash of everything the models and tests are made of: the dbt project's files and the
    dbt/adapter/engine versions. A verified build only vouches for the tests of the same
    code_version (dbt/macros/incremental.sql); after any change every test reads every row once.
    """
    from importlib import metadata

    digest = hashlib.sha256()
    for part in _PROJECT_PARTS:
        root = DBT_DIR / part
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(DBT_DIR)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for package in _CODE_PACKAGES:
        try:
            digest.update(f"{package}={metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()[:16]


# What a build may leave out once a verified build vouches for it (dbt/DECISIONLOG.md, "Skipped
# nodes"; dbt/macros/incremental.sql, skippable_selection, accepts exactly these).
_SELECT_WITHOUT_STAGING_AND_SEEDS = [
    "resource_type:test",
    "resource_type:unit_test",
    # tables and incremental models and everything downstream: PostgreSQL drops the views on
    # a table when dbt replaces it, so those views must be built again every time
    "config.materialized:table+",
    "config.materialized:incremental+",
]
_VERIFIED_QUERY = """
SELECT
    count(*),
    count(CASE WHEN unit_tests_ran THEN 1 END),
    count(CASE WHEN catalog_tests_ran AND catalog_version = (
        SELECT max(catalog_version) FROM raw.catalog_versions) THEN 1 END)
FROM analytics.valueverse_build_log
WHERE code_version = %s
"""


_RAW_TABLES = (
    "events", "ingest_batches", "rejected_events", "event_conflicts", "catalog_versions",
    "catalog_metrics", "catalog_plans", "catalog_charges", "catalog_charge_tiers",
    "catalog_charge_filters", "catalog_customers", "catalog_discounts", "catalog_subscriptions",
)  # fmt: skip
_RAW_TABLES_QUERY = (
    "SELECT count(DISTINCT table_name) FROM information_schema.tables"
    " WHERE table_schema = 'raw' AND table_name IN ({})"
)
# what a build may leave out must exist: the staging views and the seed
_SKIPPABLE_QUERY = (
    "SELECT count(DISTINCT table_schema || '.' || table_name) FROM information_schema.tables"
    " WHERE (table_schema = 'staging' AND table_name IN ({}))"
    " OR (table_schema = 'reference' AND table_name = 'currencies')"
)


def _staging_models() -> list[str]:
    return sorted(p.stem for p in (DBT_DIR / "models" / "staging").rglob("*.sql"))


def _warehouse_state(config: WarehouseConfig, version: str) -> tuple[bool, tuple[int, int, int]]:
    """(every raw table dbt reads exists, (verified builds of this code_version, of those with
    the unit tests passed, with the catalog tests passed for the current catalog)), in one
    connection. Nothing verified when the build log cannot be read (a fresh warehouse)."""
    none = (0, 0, 0)
    if config.kind == "duckdb" and not (config.duckdb_path and config.duckdb_path.exists()):
        return False, none
    with connect(config) as db:
        names = ", ".join(f"'{name}'" for name in _RAW_TABLES)
        raw_ready = db.value(_RAW_TABLES_QUERY.format(names)) == len(_RAW_TABLES)
        staging = _staging_models()
        skippable = db.value(_SKIPPABLE_QUERY.format(", ".join(f"'{name}'" for name in staging)))
        if skippable != len(staging) + 1:  # something was dropped: build everything
            return raw_ready, none
        try:
            verified = db.one(_VERIFIED_QUERY, [version])
        except driver_errors():
            verified = None
        return raw_ready, tuple(verified) if verified else none


def skipped_selection(verified: tuple[int, int, int]) -> list[str]:
    """dbt selection arguments for what a verified build of this code_version already vouches
    for on this warehouse: the staging views and the seed (it created them; they change only
    with the code, and read only raw tables), the unit tests (they read fixtures, not the
    warehouse), and the tests of the catalog and the seed when the catalog version is the same
    too. Empty when nothing is verified."""
    builds, unit_tests, catalog_tests = verified
    if not builds:
        return []
    selection = ["--select", *_SELECT_WITHOUT_STAGING_AND_SEEDS]
    excluded = [
        *(["test_type:unit"] if unit_tests else []),
        *(["tag:catalog"] if catalog_tests else []),
    ]
    return selection + (["--exclude", *excluded] if excluded else [])


def build(config: WarehouseConfig, as_of: date | None, full: bool = False) -> int:
    """Run `dbt build` (every model, seed and test) as of `as_of`; 0 on success.

    Incremental by default (dbt/DECISIONLOG.md, "Incremental build"); `full=True` passes
    --full-refresh and runs every test on every row. dbt's log goes to stderr: stdout stays
    free for the CLI's own output. The last stderr line gives the time of each phase. One
    `dbt build` span (ingestion/job_telemetry.py) with the nodes run, failed and skipped.
    """
    as_of = as_of or datetime.now(UTC).date()
    with job_run("dbt build", as_of=as_of.isoformat(), full=full) as run:
        code, counts = _build(config, as_of, full)
        run.record(**counts)
        if code:
            run.fail("failed", "dbt build failed")
    return code


def _build(config: WarehouseConfig, as_of: date, full: bool) -> tuple[int, dict[str, int]]:
    started = time.perf_counter()
    version = code_version()
    raw_ready, verified = _warehouse_state(config, version)
    prepare_build(config, raw_ready)
    skipped = [] if full else skipped_selection(verified)
    args = dbt_args(config, "build", as_of) + skipped
    if full:
        args.append("--full-refresh")
    os.environ.update(dbt_env(config))
    prepared = time.perf_counter()
    from dbt.cli import main  # noqa: F401 (imported here to time the import apart)

    imported = time.perf_counter()
    try:
        result = invoke(args)
    finally:
        _release_connections()
    finished = time.perf_counter()
    nodes, slowest = _node_times(result.result)
    print(
        f"valueverse build: {finished - started:.1f} s in-process (prepare "
        f"{prepared - started:.1f} s, import dbt {imported - prepared:.1f} s, dbt build "
        f"{finished - imported:.1f} s of which running nodes {nodes:.1f} s; slowest: {slowest}"
        f"{'; left out, a verified build vouches for it: ' if skipped else ''}"
        f"{' '.join(skipped)})",
        file=sys.stderr,
    )
    counts = _node_counts(result.result)
    if result.exception is not None:  # dbt itself failed (project, profile, connection)
        print(f"valueverse: dbt could not run: {result.exception}", file=sys.stderr)
        return 1, counts
    if not result.success:
        print("valueverse: dbt build failed (see the log above)", file=sys.stderr)
        return 1, counts
    return 0, counts


def parse(config: WarehouseConfig, as_of: date) -> int:
    """`dbt parse` with exactly the arguments `build` uses: fills dbt's partial-parse cache
    (target/<kind>/partial_parse.msgpack) without touching the warehouse. The benchmark runs it
    first so that the full and the incremental build it times both start with a warm cache."""
    os.environ.update(dbt_env(config))
    result = invoke(dbt_args(config, "parse", as_of))
    return 0 if result.success else 1


def invoke(args: list[str]) -> Any:
    """dbt in this process (dbtRunner), its log on stderr so that stdout stays the CLI's, and
    untraced (ingestion/untraced.py: not ours to measure, and ~1.7 x as slow under coverage)."""
    from dbt.cli.main import dbtRunner

    with untraced(), contextlib.redirect_stdout(sys.stderr):
        return dbtRunner().invoke(args)


def _node_times(run: Any, top: int = 5) -> tuple[float, str]:
    """dbt's wall time running the nodes (hooks included) and the slowest nodes."""
    try:
        times = sorted(((r.execution_time, r.node.name) for r in run.results), key=lambda t: -t[0])
        return float(run.elapsed_time), ", ".join(f"{n} {t:.2f} s" for t, n in times[:top])
    except (AttributeError, TypeError):  # dbt failed before running nodes
        return 0.0, "-"


def _node_counts(run: Any) -> dict[str, int]:
    """Nodes dbt ran (models, seeds, tests), those that failed (errors, failing tests) and
    those skipped after a failure upstream; all zero when dbt stopped before running nodes."""
    statuses = [
        str(getattr(r.status, "value", r.status)) for r in getattr(run, "results", None) or ()
    ]
    return {
        "nodes": len(statuses),
        "nodes_failed": sum(s in ("error", "fail") for s in statuses),
        "nodes_skipped": statuses.count("skipped"),
    }


def _release_connections() -> None:
    """Close what dbt keeps open after a run. dbt-duckdb holds its database in a class
    attribute until the process exits, which stops this process (a Dagster worker, a test)
    from opening the file again read-only, e.g. to export the invoices it just built."""
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


def prepare_build(config: WarehouseConfig, raw_ready: bool = False) -> None:
    """What must exist before dbt runs, for `valueverse build` and Dagster's dbt assets alike:
    the raw tables (unless known to be there: a fresh warehouse then builds empty marts instead
    of failing), the finalized-invoice store and the payments store the marts read as sources.
    Each is an idempotent CREATE IF NOT EXISTS owned by its module."""
    if not raw_ready:
        _ensure_raw_schema(config)
    # the payment attempts (ingestion/billing/payments_store.py), after the finalized-invoice store
    # they build on (ingestion/billing/invoice_store.py)
    ensure_payments_store(config)


def _ensure_raw_schema(config: WarehouseConfig) -> None:
    """Create the raw tables if nothing was landed yet, so a build on a fresh warehouse
    gives empty marts instead of a missing-table error. The sinks own that DDL."""
    with backends.open_sink(config):
        pass
