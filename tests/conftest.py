"""Shared fixtures: real warehouses (a scratch PostgreSQL database, a DuckDB file)
and a runner for the installed `valueverse` console script.

PostgreSQL is the server on this machine (`make test` starts it); each test
gets its own database, dropped afterwards. VALUEVERSE_TEST_PG overrides the
server URL (without a database name).
"""

from __future__ import annotations

import json
import os
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


def scenario_dirs() -> list[Path]:
    return sorted(p for p in SCENARIOS.iterdir() if (p / "scenario.yml").exists())


@contextmanager
def scratch_pg() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped on exit."""
    name = "vvtest_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
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
