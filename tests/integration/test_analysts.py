"""The analysts' role reads the marts, keeps reading them after a rebuild, and sees nothing else."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import SCENARIOS, run_cli

SCENARIO = SCENARIOS / "01_per_unit_fixed_fee"


@pytest.mark.postgres
def test_analyst_role_reads_marts_only(pg_url: str) -> None:
    role = "analyst_" + uuid.uuid4().hex[:8]
    for args in (
        ("catalog", "load", str(SCENARIO / "catalog.yml")),
        ("events", "load", str(SCENARIO / "events.jsonl")),
        ("build", "--as-of", "2026-11-01"),
    ):
        result = run_cli(pg_url, *args)
        assert result.returncode == 0, result.stderr
    granted = run_cli(pg_url, "analysts", "grant", "--role", role)
    assert granted.returncode == 0, granted.stderr
    assert f"created role {role}" in granted.stdout
    analyst_url = pg_url.replace("postgres@", f"{role}@", 1)
    try:
        with psycopg.connect(analyst_url, autocommit=True) as conn:
            lines = conn.execute("SELECT count(*) FROM marts.invoice_lines").fetchone()
            assert lines == (4,)  # the scenario's four expected lines
            for table in ("raw.events", "raw.catalog_versions", "raw.rejected_events"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        # dbt replaces the mart tables on a rebuild: the role must still read them.
        assert run_cli(pg_url, "build", "--as-of", "2026-11-01").returncode == 0
        again = run_cli(pg_url, "analysts", "grant", "--role", role)  # idempotent
        assert again.returncode == 0 and "created role" not in again.stdout
        with psycopg.connect(analyst_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM marts.invoices").fetchone() == (2,)
    finally:
        # DROP OWNED also revokes the database privilege, so the role can go.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_analyst_role_refused_on_duckdb(duckdb_url: str) -> None:
    result = run_cli(duckdb_url, "analysts", "grant")
    assert result.returncode == 1
    assert "PostgreSQL" in result.stderr and "Traceback" not in result.stderr
