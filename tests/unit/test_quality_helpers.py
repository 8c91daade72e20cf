"""Pure helpers of ingestion/quality: thresholds, locations, rounding, scopes, messages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from ingestion.quality.checks import Check, Failure, describe_failure, split_by_scope
from ingestion.quality.config import QualityError, Thresholds, docs_dir
from ingestion.quality.frames import select_list, to_date, to_decimal
from ingestion.quality.suites_billing import rounded


def test_thresholds_default_and_override() -> None:
    defaults = Thresholds.from_env({})
    assert defaults.max_reject_rate == 0.01 and defaults.volume_max_ratio == 2.0
    custom = Thresholds.from_env({"VALUEVERSE_MAX_REJECT_SHARE": "0.2",
                                  "VALUEVERSE_MAX_CONFLICT_SHARE": " "})  # fmt: skip
    assert custom.max_reject_rate == 0.2 and custom.max_conflict_rate == 0.001


@pytest.mark.parametrize("bad", ["lots", "-0.1"])
def test_thresholds_refuse_bad_values(bad: str) -> None:
    with pytest.raises(QualityError, match="VALUEVERSE_QUALITY_MAX_UNBILLED_SHARE"):
        Thresholds.from_env({"VALUEVERSE_QUALITY_MAX_UNBILLED_SHARE": bad})


def test_docs_dir_argument_then_env_then_working_directory(tmp_path: Path) -> None:
    assert docs_dir(tmp_path / "a", {"VALUEVERSE_QUALITY_DIR": "/x"}) == tmp_path / "a"
    assert docs_dir(None, {"VALUEVERSE_QUALITY_DIR": str(tmp_path / "b")}) == tmp_path / "b"
    assert docs_dir(None, {}) == Path.cwd() / "valueverse-quality"


@pytest.mark.parametrize(
    ("exact", "exponent", "want"),
    [("1.005", 2, "1.01"), ("-1.005", 2, "-1.01"), ("2.4999", 0, "2"), ("0.5", 0, "1"),
     ("1.2345", 3, "1.235")],
)  # fmt: skip
def test_rounded_is_half_away_from_zero(exact: str, exponent: int, want: str) -> None:
    assert rounded(Decimal(exact), exponent) == Decimal(want)
    assert rounded(None, exponent) is None


def test_decimal_and_date_conversion_are_exact() -> None:
    assert to_decimal("0.000000001") == Decimal("0.000000001")
    assert to_decimal(None) is None and to_decimal(float("nan")) is None
    assert to_date(pd.Timestamp("2026-10-01")) == date(2026, 10, 1)
    assert to_date("2026-10-01") == date(2026, 10, 1) and to_date(pd.NaT) is None


def test_select_list_reads_existing_columns_and_casts_money() -> None:
    got = select_list(["a", "amount", "gone"], ["amount", "a"], text=["amount"], alias="p.")
    assert got == "p.a, CAST(p.amount AS VARCHAR) AS amount"
    assert select_list(["gone"], []) == "1 AS no_columns"


def _invoices() -> Check:
    frame = pd.DataFrame(
        {
            "invoice_id": ["i1", "i2", "i3"],
            "period_start": [date(2026, 9, 1), date(2026, 10, 1), None],
            "period_end": [date(2026, 10, 1), date(2026, 11, 1), None],
        }
    )
    return Check("s", "t", frame, [], scope=("period_start", "period_end"), key="invoice_id")


def test_failures_split_by_period_and_unknown_periods_block_everything() -> None:
    failure = Failure("3 of 3 rows unexpected", rows=[1, 0, 2], all_rows_listed=True)
    got = split_by_scope(_invoices(), failure, [])
    assert [(s, e) for s, e, _ in got] == [
        (date(2026, 9, 1), date(2026, 10, 1)),
        (date(2026, 10, 1), date(2026, 11, 1)),
        (None, None),
    ]
    assert "i2" in got[1][2] and "i3" in got[2][2]


def test_failure_not_listed_row_by_row_is_not_scoped() -> None:
    failure = Failure("40 of 90 rows unexpected", rows=[0, 1], all_rows_listed=False)
    assert [(s, e) for s, e, _ in split_by_scope(_invoices(), failure, [])] == [(None, None)]


def test_one_day_scope_for_event_rows() -> None:
    frame = pd.DataFrame({"event_id": ["e"], "event_day": [date(2026, 10, 4)]})
    check = Check("s", "t", frame, [], scope=("event_day", None), key="event_id")
    got = split_by_scope(check, Failure("x", [0], True), [])
    assert [(s, e) for s, e, _ in got] == [(date(2026, 10, 4), date(2026, 10, 5))]


def test_describe_failure_reads_ge_results() -> None:
    summary = describe_failure(
        {"unexpected_count": 2, "element_count": 9, "partial_unexpected_index_list": [3, 5]}, None
    )
    assert summary.summary == "2 of 9 rows unexpected" and summary.rows == [3, 5]
    assert summary.all_rows_listed
    more = describe_failure({"unexpected_count": 30, "unexpected_index_list": None,
                             "partial_unexpected_index_list": list(range(20))}, None)  # fmt: skip
    assert not more.all_rows_listed
    missing = describe_failure({"details": {"mismatched": {"missing": ["total"]}}}, None)
    assert missing.summary == "missing columns: total"
    assert (
        describe_failure({}, "KeyError: 'x'\nmore").summary == "could not evaluate: KeyError: 'x'"
    )
