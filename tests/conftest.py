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

import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
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


# One id per test run, set by the first process (xdist's controller, which starts the workers
# afterwards with this environment): names what the run's workers share on the PostgreSQL server.
RUN_ID = "VALUEVERSE_TEST_RUN"


def pytest_configure(config: pytest.Config) -> None:
    """Per-worker state for parallel runs: dbt's target folder (partial-parse cache and
    manifests) may not be shared by two builds at once."""
    os.environ.setdefault(RUN_ID, uuid.uuid4().hex[:12])
    # dbt's debug log file, which no test reads, costs about 8% of each build's time; what a
    # failing build says still reaches the test through its stderr
    os.environ.setdefault("DBT_LOG_LEVEL_FILE", "none")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        os.environ["VALUEVERSE_DBT_TARGET_DIR"] = str(ROOT / "dbt" / "target" / f"pytest-{worker}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's first process drops the PostgreSQL template its workers shared (a run
    without PostgreSQL has none, and may have no server to ask)."""
    if hasattr(session.config, "workerinput"):
        return
    with contextlib.suppress(psycopg.OperationalError):
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_pg_template_name()}" WITH (FORCE)')


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
    """Rows of `sql` on the warehouse at `url` (open it only after the CLI has exited).
    DuckDB files are opened read-only: a warehouse shared by the run's workers (the
    dashboards') may be read by several processes at once, never while one holds it for
    writing."""
    if url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url[len("duckdb://") :], read_only=True)
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that every xdist worker of this run shares (their own temporary folders sit in
    it), for what is made once per run (once_per_run)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(run_folder: Path, name: str, make: Callable[[Path], None]) -> Path:
    """run_folder/name, made by `make` (given that empty folder) by the first worker that asks;
    the others wait on a lock and then use it. A failed attempt is made again by the next."""
    folder = run_folder / name
    ready = run_folder / f"{name}.ready"
    with open(run_folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            ready.touch()
    return folder


# A warehouse built once per test run while empty: raw schema, staging views, the seed, and
# a verified build of this code version (its dbt unit tests passed), which later builds on a
# copy leave out (dbt/DECISIONLOG.md, "Skipped nodes"). Tests that start by loading a catalog
# and events copy it instead of paying for that first build again; the first build on an
# empty warehouse keeps its own tests (test_rating_cli, test_rating_incremental).
TEMPLATE_AS_OF = "2026-01-01"


def _build_empty(url: str, cwd: Path) -> None:
    result = run_step(url, "build", "--as-of", TEMPLATE_AS_OF, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="session")
def duckdb_template(run_folder: Path) -> Path:
    def make(folder: Path) -> None:
        _build_empty(f"duckdb:///{folder}/warehouse.duckdb", folder)

    return once_per_run(run_folder, "template-duckdb", make) / "warehouse.duckdb"


def _pg_template_name() -> str:
    return f"vvtemplate_{os.environ[RUN_ID]}"


@pytest.fixture(scope="session")
def pg_template(run_folder: Path) -> str:
    """Name of the run's template database (pytest_sessionfinish drops it)."""
    name = _pg_template_name()

    def make(folder: Path) -> None:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        _build_empty(f"{PG_SERVER}/{name}", folder)

    once_per_run(run_folder, "template-postgres", make)
    return name


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


# Commands that fork worker processes: a test process that has run dbt holds its threads
# (and DuckDB's), and must not fork; run_step sends these through run_cli.
_FORKING = {("events", "load"), ("ingest", "run"), ("demo",)}


def run_step(url: str, *args: str, cwd: Path | None = None) -> CliResult:
    """`valueverse ARGS` for a test's steps that need the command's result but not its process
    boundary (run_cli keeps that for the tests of the command line itself): called as a
    function in this test process (ingestion.cli.main), with its stdout, stderr and exit code,
    unless the command forks workers. A build run this way imports dbt and loads its
    partial-parse state once per worker instead of once per call: about 12 s a build instead
    of 22 on this machine (tests/bench/RESULTS.md). The process's environment and working
    folder are restored afterwards."""
    if any(tuple(args[: len(command)]) == command for command in _FORKING):
        return run_cli(url, *args, cwd=cwd)
    from ingestion.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["--warehouse", url, *args])
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return CliResult(code, out.getvalue(), err.getvalue())
