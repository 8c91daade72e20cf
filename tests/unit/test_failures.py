"""Which write failures the Kafka consumer retries and which it dead-letters (failures.py).

DuckDB's errors are raised by a real in-memory database; PostgreSQL's are psycopg's classes for
the server's SQLSTATEs (what the driver raises for each answer). The whole path, a refusal
from a real PostgreSQL through a real broker, is tests/integration/test_kafka_faults.py.
"""

from __future__ import annotations

import duckdb
import psycopg
import pytest

from ingestion.landing import failures


def duckdb_error(*statements: str) -> duckdb.Error:
    con = duckdb.connect()
    try:
        for sql in statements[:-1]:
            con.execute(sql)
        con.execute(statements[-1])
    except duckdb.Error as exc:
        return exc
    finally:
        con.close()
    raise AssertionError(f"no error from {statements[-1]!r}")


def server_error(sqlstate: str, message: str = "refused") -> psycopg.Error:
    return psycopg.errors.lookup(sqlstate)(message)


REFUSALS = {
    "data exception": server_error("22000"),
    "invalid text": server_error("22P02"),
    "check violation": server_error("23514"),
    "duckdb conversion": duckdb_error("SELECT 'x'::INTEGER"),
    "duckdb constraint": duckdb_error(
        "CREATE TABLE t (n INTEGER CHECK (n > 0))", "INSERT INTO t VALUES (0)"
    ),
}
PASSING = {
    "serialization failure": server_error("40001"),
    "deadlock": server_error("40P01"),
    "lock timeout": server_error("55P03"),
    "statement timeout": server_error("57014"),
    "server shutting down": server_error("57P01"),
    "connection lost": server_error("08006"),
    "disk full": server_error("53100"),
    "driver connection error": psycopg.OperationalError("connection is lost"),
    "duckdb file locked": duckdb.IOException("Could not set lock on file"),
}


@pytest.mark.parametrize("exc", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_are_permanent_and_not_retried(exc: BaseException) -> None:
    assert failures.is_permanent(exc)
    assert not isinstance(exc, failures.TRANSIENT)


@pytest.mark.parametrize("exc", PASSING.values(), ids=PASSING.keys())
def test_passing_failures_are_retried(exc: BaseException) -> None:
    assert isinstance(exc, failures.TRANSIENT)
    assert not failures.is_permanent(exc)


DEPLOYMENT = {
    "revoked privilege": server_error("42501"),
    "missing table": server_error("42P01"),
    "duckdb missing table": duckdb_error("INSERT INTO missing VALUES (1)"),
}


@pytest.mark.parametrize("exc", DEPLOYMENT.values(), ids=DEPLOYMENT.keys())
def test_a_warehouse_the_service_cannot_write_stops_it(exc: BaseException) -> None:
    """Every batch would fail alike: dead-lettering them would drain the whole stream."""
    assert not failures.is_permanent(exc)
    assert not isinstance(exc, failures.TRANSIENT)


def test_a_driver_misuse_is_neither_it_stops_the_service() -> None:
    """psycopg raises ProgrammingError for a misuse of the driver too (no SQLSTATE): a bug in
    our code, which must not send the whole stream to the dead-letter topic."""
    exc = psycopg.ProgrammingError("the query has 2 placeholders but 1 parameters were passed")
    assert not failures.is_permanent(exc)
    assert not isinstance(exc, failures.TRANSIENT)


def test_describe_names_class_and_sqlstate_masks_passwords_and_is_bounded() -> None:
    exc = server_error(
        "42501", "permission denied for postgresql://vv:hunter2@db:5432/x\nDETAIL: more"
    )
    assert failures.describe(exc) == (
        "InsufficientPrivilege (SQLSTATE 42501): permission denied for postgresql://vv:***@db:5432/x"
    )
    assert failures.describe(duckdb_error("SELECT 'x'::INTEGER")).startswith(
        "ConversionException: Conversion Error: Could not convert string 'x' to INT32"
    )
    assert len(failures.describe(server_error("22000", "x" * 10_000))) < 400
