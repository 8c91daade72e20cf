"""Shared fixtures: real warehouses (a scratch PostgreSQL database, a DuckDB file)
and a runner for the installed `valueverse` console script.

PostgreSQL is the server on this machine (`make test` starts it); each test
gets its own database, dropped afterwards. VALUEVERSE_TEST_PG overrides the
server URL (without a database name).

The suite runs in parallel (pytest-xdist, `make test`): each worker keeps its own dbt
target folder, so dbt's partial-parse state is never shared by two builds at once, and
the tests of a module that share a module-scoped fixture (a built warehouse, a broker, a
server) stay on one worker, so that fixture is made once. Markers are given here from
what a test uses: `postgres` (the PostgreSQL server), `kafka` (a Kafka-protocol broker),
`browser` (Chromium), `slow` (fault and load tests that take tens of seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The billing contract's examples (dbt/docs/contract.md): 01-10 are the published
# conformance examples, 11 on cover the rules they leave out.
SCENARIOS = ROOT / "tests" / "scenarios"
PG_SERVER = os.environ.get("VALUEVERSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
CLI = str(Path(sys.executable).parent / "valueverse")


KAFKA_MODULES = {"test_kafka_ingest", "test_kafka_faults", "test_dagster_materialize"}
SLOW_MODULES = {"test_landing_crash", "test_kafka_faults", "test_payments_faults"}
POSTGRES_FIXTURES = {"pg_url", "scratch_pg", "built_pg_url"}


def pytest_configure(config: pytest.Config) -> None:
    """Per-worker state for parallel runs: dbt's target folder (partial-parse cache and
    manifests) may not be shared by two builds at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        os.environ["VALUEVERSE_DBT_TARGET_DIR"] = str(ROOT / "dbt" / "target" / f"pytest-{worker}")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        callspec = getattr(item, "callspec", None)
        params = list(callspec.params.values()) if callspec else []
        if POSTGRES_FIXTURES & set(item.fixturenames) or "postgres" in params:
            item.add_marker(pytest.mark.postgres)
        if module in KAFKA_MODULES:
            item.add_marker(pytest.mark.kafka)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if item.path.parent.name == "e2e":
            item.add_marker(pytest.mark.browser)
        if _shares_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(module))


def _shares_module_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module-scoped fixture (made once per worker that runs it)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values() if defs)


def scenario_dirs() -> list[Path]:
    return sorted(p for p in SCENARIOS.iterdir() if (p / "scenario.yml").exists())


@contextmanager
def scratch_pg(template: str | None = None) -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped on exit: empty, or a copy of the database
    `template` (which nobody may be connected to)."""
    name = "vvtest_" + uuid.uuid4().hex[:12]
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database."""
    with scratch_pg() as url:
        yield url


def query(url: str, sql: str) -> list[tuple]:
    """Rows of `sql` on the warehouse at `url` (open it only after the CLI has exited)."""
    if url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url[len("duckdb://") :])
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


# A warehouse built once per test session while empty: raw schema, staging views, the seed,
# and a verified build of this code version (its dbt unit tests passed), which later builds
# on a copy leave out (dbt/DECISIONLOG.md, "Skipped nodes"). Tests that start by loading a
# catalog and events copy it instead of paying for that first build again; the first build
# on an empty warehouse keeps its own tests (test_rating_cli, test_rating_incremental).
TEMPLATE_AS_OF = "2026-01-01"


def _build_empty(url: str, cwd: Path) -> None:
    result = run_cli(url, "build", "--as-of", TEMPLATE_AS_OF, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="session")
def duckdb_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template-duckdb")
    _build_empty(f"duckdb:///{folder}/warehouse.duckdb", folder)
    return folder / "warehouse.duckdb"


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Name of the template database (dropped when the session ends)."""
    with scratch_pg() as url:
        _build_empty(url, tmp_path_factory.mktemp("template-postgres"))
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def built_pg_url(pg_template: str) -> Iterator[str]:
    """URL of a PostgreSQL copy of the session's built, empty warehouse."""
    with scratch_pg(template=pg_template) as url:
        yield url


@pytest.fixture(params=["duckdb", "postgres"])
def built_warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs once per backend, on its own copy of the session's built,
    empty warehouse."""
    if request.param == "duckdb":
        target = tmp_path / "warehouse.duckdb"
        shutil.copy(request.getfixturevalue("duckdb_template"), target)
        yield f"duckdb:///{target}"
    else:
        yield request.getfixturevalue("built_pg_url")


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path}/warehouse.duckdb"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs once per backend."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path}/warehouse.duckdb"
    else:
        yield request.getfixturevalue("pg_url")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_json(self) -> dict:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return json.loads(lines[-1])


def run_cli(url: str, *args: str, cwd: Path | None = None, timeout: int = 600) -> CliResult:
    """Run `valueverse ARGS` as a user would, against the warehouse at `url`."""
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": url}
    proc = subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
