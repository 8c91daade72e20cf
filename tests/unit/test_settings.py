"""Numbers from the environment (ingestion/warehouse/settings.py) and the commands that read
them: a bad value is one line naming the variable, never a traceback, and `--help` works
whatever the environment holds."""

from __future__ import annotations

import subprocess
from decimal import Decimal

import pytest

from ingestion.warehouse import ConfigError, env_decimal, env_int
from tests.conftest import CLI


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", 7), ("  ", 7), ("0", 0), ("12", 12), (" 5 ", 5)],
)
def test_env_int_reads_whole_numbers(raw: str, expected: int, monkeypatch) -> None:
    monkeypatch.setenv("VV_TEST_N", raw)
    assert env_int("VV_TEST_N", 7) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "VV_TEST_N must be a whole number, got 'abc'"),
        ("1.5", "VV_TEST_N must be a whole number, got '1.5'"),
        ("9" * 5000, "VV_TEST_N must be a whole number"),
        ("-1", "VV_TEST_N must be between 0 and 10, got '-1'"),
        ("11", "VV_TEST_N must be between 0 and 10, got '11'"),
    ],
)
def test_env_int_names_a_bad_value(raw: str, message: str, monkeypatch) -> None:
    monkeypatch.setenv("VV_TEST_N", raw)
    with pytest.raises(ConfigError) as info:
        env_int("VV_TEST_N", 7, maximum=10)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("raw", ["soon", "nan", "inf", "-1", "1e999999999"])
def test_env_decimal_names_a_bad_value(raw: str, monkeypatch) -> None:
    monkeypatch.setenv("VV_TEST_D", raw)
    with pytest.raises(ConfigError, match="VV_TEST_D must be"):
        env_decimal("VV_TEST_D", "30", Decimal("0.1"), Decimal(600))


def test_env_decimal_is_exact(monkeypatch) -> None:
    monkeypatch.setenv("VV_TEST_D", "0.1")
    assert env_decimal("VV_TEST_D", "30", Decimal(0)) == Decimal("0.1")
    monkeypatch.delenv("VV_TEST_D")
    assert env_decimal("VV_TEST_D", "30", Decimal(0)) == Decimal(30)


@pytest.mark.parametrize(
    ("variable", "args"),
    [
        ("VALUEVERSE_FINALIZE_GRACE_DAYS", ["invoices", "finalize", "--as-of", "2026-02-04"]),
        ("VALUEVERSE_LOAD_WORKERS", ["events", "load", "events.jsonl"]),
        ("VALUEVERSE_STRIPE_TIMEOUT_SECONDS", ["payments", "collect"]),
        ("VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS", ["payments", "collect"]),
    ],
)
def test_a_bad_variable_is_one_line_and_help_still_works(
    variable: str, args: list[str], tmp_path, monkeypatch
) -> None:
    """VALUEVERSE_FINALIZE_GRACE_DAYS=abc used to break every command, `--help` included, and
    the other two ended in tracebacks."""
    # with a key, payments get as far as reading their settings
    env = {"PATH": "/usr/bin:/bin", variable: "abc",
           "VALUEVERSE_WAREHOUSE": f"duckdb:///{tmp_path}/w.duckdb",
           "STRIPE_API_KEY": "sk_test_x"}  # fmt: skip
    (tmp_path / "events.jsonl").write_text("{}\n")
    helped = subprocess.run([CLI, "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "usage: valueverse" in helped.stdout
    ran = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert f"valueverse: {variable} must be" in ran.stderr, ran.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["invoices", "finalize", "--as-of", "2999-01-01"],
        ["payments", "collect", "--now", "2999-01-01T00:00:00Z"],
        ["payments", "dunning", "--now", "2999-01-01T00:00:00Z"],
    ],
)
def test_money_moving_commands_refuse_a_future_clock(args: list[str], tmp_path) -> None:
    """Finalizing as of a future date issued open periods irreversibly, and a future `now`
    made dunning charge ahead of schedule; a replay must say so explicitly."""
    env = {"PATH": "/usr/bin:/bin", "VALUEVERSE_WAREHOUSE": f"duckdb:///{tmp_path}/w.duckdb",
           "STRIPE_API_KEY": "sk_test_x", "STRIPE_API_BASE": "http://127.0.0.1:9"}  # fmt: skip
    ran = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert "2999-01-01" in ran.stderr and "is after now" in ran.stderr
    assert "VALUEVERSE_ALLOW_FUTURE_CLOCK=1" in ran.stderr
    assert not (tmp_path / "w.duckdb").exists()  # refused before anything was written


def test_a_replay_may_use_a_future_clock_and_is_logged(monkeypatch, caplog) -> None:
    from datetime import date

    from ingestion.warehouse import UsageError, refuse_future

    with pytest.raises(UsageError):
        refuse_future(date(2999, 1, 1), "finalization as of")
    refuse_future(date(2000, 1, 1), "finalization as of")  # the past is always fine
    monkeypatch.setenv("VALUEVERSE_ALLOW_FUTURE_CLOCK", "1")
    refuse_future(date(2999, 1, 1), "finalization as of")
    assert "finalization as of 2999-01-01 is in the future" in caplog.text
