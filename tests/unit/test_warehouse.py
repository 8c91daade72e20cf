"""The warehouse access layer on DuckDB (PostgreSQL runs the same SQL in the integration tests):
placeholders, transactions, read-only opening and the kind of each error."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ingestion.cli import main
from ingestion.warehouse import (
    ConfigError,
    UsageError,
    WarehouseBusy,
    WarehouseError,
    WarehouseMissing,
    connect,
    duckdb_sql,
    fetch,
    resolve,
    session,
    transaction,
)


def test_placeholders_translate_exactly_as_psycopg_reads_them() -> None:
    assert duckdb_sql("a = %s AND b LIKE 'x%%' AND c = %s") == "a = ? AND b LIKE 'x%' AND c = ?"
    assert duckdb_sql("SELECT '%%s'") == "SELECT '%s'"  # an escaped percent, then a letter
    for bad in ("SELECT '100%'", "x = %(name)s", "x = %d"):
        with pytest.raises(ValueError, match="only %s and %%"):
            duckdb_sql(bad)


@pytest.mark.parametrize(
    "url", ["duckdb://relative.duckdb", "postgresql://host:5432", "mysql://x/y"]
)
def test_a_bad_url_is_a_config_error_not_a_warehouse_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(url)
    assert not isinstance(info.value, WarehouseError)  # sensors would read it as "busy"


def test_cli_reports_a_bad_url_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--warehouse", "duckdb://relative.duckdb", "build"]) == 1
    err = capsys.readouterr().err
    assert err == "valueverse: DuckDB URL must hold an absolute path: 'duckdb://relative.duckdb'\n"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://billing:s3cret@db:5432",  # no database
        "postgresql://billing:s3cret@db:port/valueverse",  # a bad port
        "mysql://billing:s3cret@db/valueverse",
        "duckdb://billing:s3cret@relative",
        "postgresql://billing:s3c@ret@db/",
    ],
)
def test_a_bad_url_is_reported_without_its_password(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed URL used to be echoed whole, password included, and a bad port ended in a
    traceback."""
    assert main(["--warehouse", url, "build"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("valueverse: ") and err.count("\n") == 1
    assert "s3c" not in err and "ret@" not in err
    assert "billing:***@" in err


@pytest.mark.parametrize("command", [["build"], ["catalog", "load", "catalog.yml"]])
def test_an_uncreatable_duckdb_folder_is_one_line(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to end in a FileNotFoundError traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    (tmp_path / "catalog.yml").write_text("metrics: []\n")
    url = f"duckdb://{blocker}/sub/w.duckdb"
    assert main(["--warehouse", url, *command[:2], *(str(tmp_path / c) for c in command[2:])]) == 1
    assert capsys.readouterr().err == (
        f"valueverse: cannot create the folder of DuckDB warehouse {blocker}/sub/w.duckdb:"
        " Not a directory\n"
    )


def test_usage_errors_are_not_warehouse_errors(tmp_path: Path) -> None:
    from ingestion.billing.finalization import finalize
    from ingestion.roles.analysts import grant_analyst_role

    config = resolve(f"duckdb://{tmp_path}/w.duckdb")
    for call in (
        lambda: finalize(config, date(2026, 10, 1), grace_days=-1),
        lambda: grant_analyst_role(config, "analyst", None),  # a PostgreSQL feature
    ):
        with pytest.raises(UsageError) as info:
            call()
        assert not isinstance(info.value, WarehouseError)


def test_parameters_and_values_round_trip(tmp_path: Path) -> None:
    config = resolve(f"duckdb://{tmp_path}/w.duckdb")
    with connect(config) as db:
        db.execute("CREATE TABLE t (k VARCHAR, amount DECIMAL(38, 4))")
        db.executemany("INSERT INTO t VALUES (%s, %s)", [("a%", Decimal("1.5")), ("b", None)])
        db.append("t", ("k", "amount"), [("c", Decimal("2.25"))])
        assert db.rows("SELECT k FROM t WHERE k LIKE 'a%%' OR k = %s ORDER BY k", ["c"]) == [
            ("a%",),
            ("c",),
        ]
        assert db.value("SELECT sum(amount) FROM t") == Decimal("3.7500")
        assert db.one("SELECT k FROM t WHERE k = %s", ["zzz"]) is None
        frame = db.frame("SELECT k, amount FROM t WHERE k = %s", ["a%"])
        assert list(frame.columns) == ["k", "amount"]
        assert frame["amount"].tolist() == [Decimal("1.5000")]  # exact, never float


def test_insert_rows_writes_every_chunk_and_its_suffix_applies_to_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go many to a statement (ROWS_PER_INSERT); a conflict in any chunk, with an earlier
    chunk or within its own, is handled by the suffix; exact values kept."""
    monkeypatch.setattr(session, "ROWS_PER_INSERT", 2)
    config = resolve(f"duckdb://{tmp_path}/w.duckdb")
    rows = [("a", Decimal("1.5")), ("b", None), ("c", Decimal("0.0001")), ("a", Decimal("9")),
            ("d", Decimal("2"))]  # fmt: skip
    with connect(config) as db:
        db.execute("CREATE TABLE t (k VARCHAR PRIMARY KEY, amount DECIMAL(38, 4))")
        db.insert_rows("INSERT INTO t (k, amount)", rows, "ON CONFLICT (k) DO NOTHING")
        db.insert_rows("INSERT INTO t (k, amount)", [], "ON CONFLICT (k) DO NOTHING")
        assert db.rows("SELECT k, amount FROM t ORDER BY k") == [
            ("a", Decimal("1.5000")), ("b", None), ("c", Decimal("0.0001")),
            ("d", Decimal("2.0000")),
        ]  # fmt: skip


def test_a_transaction_commits_or_rolls_back_as_one(tmp_path: Path) -> None:
    config = resolve(f"duckdb://{tmp_path}/w.duckdb")
    with transaction(config) as db:
        db.execute("CREATE TABLE t (n INTEGER)")
        db.execute("INSERT INTO t VALUES (%s)", [1])
    with pytest.raises(RuntimeError), transaction(config) as db:
        db.execute("INSERT INTO t VALUES (%s)", [2])
        raise RuntimeError("half way")
    assert fetch(config, "SELECT n FROM t") == [(1,)]


def test_read_only_missing_and_busy(tmp_path: Path) -> None:
    config = resolve(f"duckdb://{tmp_path}/w.duckdb")
    with pytest.raises(WarehouseMissing, match="does not exist yet"):
        fetch(config, "SELECT 1")
    assert not config.duckdb_path.exists()  # a reader never creates the file
    connect(config).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('held', flush=True); time.sleep(30)", str(config.duckdb_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match="is busy"):
            fetch(config, "SELECT 1")
    finally:
        holder.kill()
        holder.wait(timeout=10)
