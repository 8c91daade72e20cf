"""The analysts' role reads the marts, keeps reading them after a rebuild, and sees nothing else."""

from __future__ import annotations

import os
import subprocess
import uuid

import psycopg
import pytest

from tests.conftest import CLI, SCENARIOS, run_cli

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


@pytest.mark.postgres
def test_analyst_sessions_are_bounded_and_the_password_is_a_verifier(pg_url: str) -> None:
    """No statement timeout, no connection limit, temporary tables allowed, and the password
    sent as plain SQL text: one analyst could hold the warehouse, and a statement log kept the
    password."""
    role = "analyst_" + uuid.uuid4().hex[:8]
    secret = "correct horse " + uuid.uuid4().hex
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": pg_url, "VALUEVERSE_ANALYST_PASSWORD": secret}
    granted = subprocess.run([CLI, "analysts", "grant", "--role", role], env=env,
                             capture_output=True, text=True)  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    assert secret not in granted.stdout + granted.stderr
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            stored, limit = conn.execute(
                "SELECT rolpassword, rolconnlimit FROM pg_authid WHERE rolname = %s", (role,)
            ).fetchone()
            assert stored.startswith("SCRAM-SHA-256$4096:") and secret not in stored
            assert limit == 10
        with psycopg.connect(pg_url.replace("postgres@", f"{role}@", 1), autocommit=True) as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("2min",)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE TEMP TABLE t (x int)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE marts.mine (x int)")
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


@pytest.mark.postgres
def test_an_existing_role_with_other_powers_is_refused(pg_url: str) -> None:
    """Naming an existing role (even the owner) used to set its password and leave its other
    privileges: a role in pg_read_all_data could then read raw events and payment data."""
    role = "reader_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'before'")
        conn.execute(f'GRANT pg_read_all_data TO "{role}"')
        before = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                              (role,)).fetchone()  # fmt: skip
    try:
        for name, reason in ((role, "member of pg_read_all_data"),
                             ("postgres", "superuser")):  # fmt: skip
            refused = run_cli(pg_url, "analysts", "grant", "--role", name)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr
            assert f"role {name} already exists" in refused.stderr and reason in refused.stderr
        with psycopg.connect(pg_url, autocommit=True) as conn:
            after = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                                 (role,)).fetchone()  # fmt: skip
            assert after == before
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')
