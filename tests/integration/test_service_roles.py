"""`valueverse roles apply`: each service logs in as its own role, does its job, and nothing more.

Before, every service connected as the owner (a superuser in compose), who can disable the
append-only triggers, skip them with session_replication_role, or drop the billing store.
Each test logs in as each role (the cluster trusts local logins, so no password is needed to
connect) and shows what it can and cannot do.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from ingestion.demo.localstripe import LocalStripe
from tests.conftest import CLI, PG_SERVER, SCENARIOS, run_cli, scratch_pg
from tests.integration.payments_support import (
    TEST_KEY,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    stripe_server_fixture,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.postgres
SCENARIO = SCENARIOS / "01_per_unit_fixed_fee"
KINDS = ("owner", "loader", "billing", "reader", "dagster", "api")


@pytest.fixture
def roles_db() -> Iterator[tuple[str, str]]:
    """(admin URL of a fresh database, a role-name prefix of its own); the database goes
    first, then the roles (they own objects only in it)."""
    prefix = "vv" + uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as stack:
        stack.callback(_drop_roles, prefix)
        yield stack.enter_context(scratch_pg()), prefix


def _drop_roles(prefix: str) -> None:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        for kind in KINDS:
            conn.execute(f'DROP ROLE IF EXISTS "{prefix}_{kind}"')


def _as(url: str, role: str) -> str:
    return url.replace("postgres@", f"{role}@", 1)


def _apply(url: str, prefix: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "roles", "apply", "--prefix", prefix],
        env={**os.environ, "VALUEVERSE_WAREHOUSE": url, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _refused(conn: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_each_service_role_does_its_job_and_nothing_more(
    roles_db: tuple[str, str], stripe_server: LocalStripe, tmp_path, monkeypatch
) -> None:
    url, prefix = roles_db
    monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.base)
    secret = "loader secret " + uuid.uuid4().hex
    applied = _apply(url, prefix, VALUEVERSE_LOADER_PASSWORD=secret)
    assert applied.returncode == 0, applied.stderr
    assert f"created role {prefix}_owner" in applied.stdout
    assert secret not in applied.stdout + applied.stderr
    loader, billing, reader = (_as(url, f"{prefix}_{k}") for k in ("loader", "billing", "reader"))

    # each role does its job: land (loader), build and finalize (billing), read (reader)
    for role_url, args in (
        (loader, ("catalog", "load", str(SCENARIO / "catalog.yml"))),
        (loader, ("events", "load", str(SCENARIO / "events.jsonl"))),
        (billing, ("build", "--as-of", "2026-11-05")),
        (billing, ("invoices", "finalize", "--as-of", "2026-11-05")),
        (billing, ("payments", "collect", "--now", "2026-11-06T06:00:00Z")),
        (billing, ("quality", "run", "--as-of", "2026-11-05", "--docs-dir", str(tmp_path))),
    ):
        result = run_cli(role_url, *args)
        assert result.returncode == 0, (args, result.stderr)
    with psycopg.connect(reader, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM marts.invoice_lines").fetchone() == (4,)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1min",)
        for table in ("analytics.valueverse_build_log", "quality.runs", "billing.dunning_events"):
            conn.execute(f"SELECT count(*) FROM {table}")  # what the dashboards read besides
        for statement in (
            "SELECT 1 FROM raw.events",
            "SELECT 1 FROM billing.payment_attempts",
            "DELETE FROM marts.invoice_lines",
            "CREATE TABLE marts.x (a int)",
        ):
            _refused(conn, statement)  # fmt: skip

    # billing appends to the store and can never undo it
    with psycopg.connect(billing, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM billing.finalized_invoices").fetchone() == (2,)
        paid = "SELECT count(*) FROM billing.invoice_payment_status WHERE payment_status = 'paid'"
        assert conn.execute(paid).fetchone() == (2,)
        for statement in (
            "DELETE FROM billing.finalized_invoice_lines",
            "UPDATE billing.finalized_invoices SET total = 0",
            "TRUNCATE billing.finalized_invoices",
            "ALTER TABLE billing.finalized_invoice_lines DISABLE TRIGGER ALL",
            "DROP TABLE billing.finalized_invoice_lines",
            "SET session_replication_role = replica",
            f"SET ROLE {prefix}_owner",
            "INSERT INTO raw.events SELECT * FROM raw.events LIMIT 1",
            "CREATE TABLE raw.x (a int)",
        ):
            _refused(conn, statement)

    # the loader inserts landing rows and reads nothing of billing
    with psycopg.connect(loader, autocommit=True) as conn:
        for statement in (
            "SELECT 1 FROM billing.finalized_invoices",
            "DELETE FROM raw.events",
            "DROP TABLE raw.events",
            "CREATE TABLE raw.events_y1700m01 PARTITION OF raw.events"
            " FOR VALUES FROM ('1700-01-01') TO ('1700-02-01')",
            f"SET ROLE {prefix}_owner",
        ):
            _refused(conn, statement)
        with pytest.raises(psycopg.errors.RaiseException, match="near today"):
            conn.execute("SELECT raw.create_events_partition(1700, 1)")
    refused = run_cli(loader, "invoices", "finalize", "--as-of", "2026-11-05")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and "permission denied" in refused.stderr

    # the usage API reads keys, marts and issued invoices, records webhooks, and no more
    from datetime import datetime

    from ingestion.api.rejects import RejectBatch, record_rejects
    from ingestion.landing.sinks.contract import RejectRow
    from ingestion.warehouse import resolve

    api_url = _as(url, f"{prefix}_api")
    row = RejectRow("api:k/r#0", b"{}", "r", "d")
    record_rejects(resolve(api_url), [RejectBatch("api:k", [row], datetime(2026, 11, 5))])
    with psycopg.connect(api_url, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM api.keys")
        assert conn.execute("SELECT count(*) FROM marts.invoice_lines").fetchone() == (4,)
        assert conn.execute("SELECT count(*) FROM billing.finalized_invoices").fetchone() == (2,)
        for statement in ("SELECT 1 FROM raw.events", "UPDATE api.keys SET revoked_at = now()",
                          "SELECT raw_payload FROM raw.rejected_events",
                          "DELETE FROM billing.webhook_events", "INSERT INTO raw.events"
                          " SELECT * FROM raw.events"):  # fmt: skip
            _refused(conn, statement)

    # the owner never logs in
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        psycopg.connect(_as(url, f"{prefix}_owner")).close()
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (f"{prefix}_loader",)
        ).fetchone()
        assert stored[0].startswith("SCRAM-SHA-256$") and secret not in stored[0]
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('raw', 'billing', 'quality') AND c.relkind IN ('r', 'p', 'v')"
        ).fetchall()
        assert owners == [(f"{prefix}_owner",)]

    again = _apply(url, prefix)  # idempotent
    assert again.returncode == 0, again.stderr
    assert "created role" not in again.stdout


def test_roles_apply_takes_over_a_warehouse_made_before_the_roles(
    roles_db: tuple[str, str],
) -> None:
    """A warehouse the administrator built and landed into keeps working: its objects move to
    the owner and the roles, and the loader lands more events into it."""
    url, prefix = roles_db
    for args in (("catalog", "load", str(SCENARIO / "catalog.yml")),
                 ("events", "load", str(SCENARIO / "events.jsonl")),
                 ("build", "--as-of", "2026-11-01")):  # fmt: skip
        assert run_cli(url, *args).returncode == 0
    applied = _apply(url, prefix)
    assert applied.returncode == 0, applied.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        marts_owner = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
            " WHERE relnamespace = 'marts'::regnamespace AND relkind IN ('r', 'v')"
        ).fetchall()
        assert marts_owner == [(f"{prefix}_billing",)]
    again = run_cli(_as(url, f"{prefix}_loader"), "events", "load", str(SCENARIO / "events.jsonl"))
    assert again.returncode == 0, again.stderr
    rebuilt = run_cli(_as(url, f"{prefix}_billing"), "build", "--as-of", "2026-11-01")
    assert rebuilt.returncode == 0, rebuilt.stderr


def test_a_role_roles_apply_did_not_make_is_refused(roles_db: tuple[str, str]) -> None:
    url, prefix = roles_db
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{prefix}_billing" LOGIN')
        conn.execute(f'GRANT pg_read_all_data TO "{prefix}_billing"')
    refused = _apply(url, prefix)
    assert refused.returncode == 1
    assert f"role {prefix}_billing already exists" in refused.stderr
    assert "pg_read_all_data" in refused.stderr and "Traceback" not in refused.stderr


def test_roles_are_refused_on_duckdb(duckdb_url: str) -> None:
    result = run_cli(duckdb_url, "roles", "apply")
    assert result.returncode == 1
    assert "PostgreSQL" in result.stderr and "Traceback" not in result.stderr


def test_dagster_keeps_its_runs_in_its_own_schema(roles_db: tuple[str, str], tmp_path) -> None:
    """compose's DAGSTER_PG_URL logs in as <prefix>_dagster: its storage lands in schema
    dagster, and that role reads nothing of the billing data."""
    import dagster as dg

    from dagster_project.lib.instance import write_instance

    url, prefix = roles_db
    assert _apply(url, prefix).returncode == 0
    dagster_url = _as(url, f"{prefix}_dagster")
    env = write_instance(tmp_path, {"DAGSTER_PG_URL": dagster_url})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            assert instance.get_runs() == []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT DISTINCT schemaname, tableowner FROM pg_tables WHERE tablename = 'event_logs'"
        ).fetchall()
        assert tables == [("dagster", f"{prefix}_dagster")]
    with psycopg.connect(dagster_url, autocommit=True) as conn:
        _refused(conn, "SELECT 1 FROM raw.events")
        _refused(conn, "SELECT 1 FROM billing.finalized_invoices")
