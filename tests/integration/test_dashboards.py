"""Every dashboard page through streamlit.testing.v1.AppTest on a warehouse built by the real
CLI (tests/integration/dashboards_support.py): the figures shown (metrics, table cells) must
equal the marts, and a warehouse without the optional tables must explain what to run.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, query, scratch_pg
from tests.integration.dashboards_support import (
    DOCS_INDEX,
    build_warehouse,
    session_warehouse,
    without_optional_tables,
)

APP = str(ROOT / "dashboards" / "streamlit_app.py")


def _fmt(value: Decimal, exponent: int, currency: str) -> str:
    """The money format the pages must show, computed here independently."""
    q = value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
    return f"{q:,} {currency}"


def _app(url: str, monkeypatch: pytest.MonkeyPatch, page: str) -> AppTest:
    monkeypatch.setenv("VALUEVERSE_WAREHOUSE", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _frame(at: AppTest, name: str) -> pd.DataFrame:
    """The table `name`: every table comes with its CSV button (keyed csv-<name>), in order."""
    buttons = [b.key for b in at.download_button]
    assert f"csv-{name}" in buttons, (name, buttons)
    assert len(buttons) == len(at.dataframe)
    return at.dataframe[buttons.index(f"csv-{name}")].value.reset_index(drop=True)


def _rows(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else v for v in row) for row in df[columns].itertuples(index=False)
    ]


def _same(shown: pd.DataFrame, url: str, sql: str) -> None:
    """The table shown equals the query's rows, cell by cell (Decimal compared by value)."""
    expected = query(url, sql)
    columns = [c.strip().split(" as ")[-1] for c in sql.split(" from ")[0][7:].split(",")]
    assert _rows(shown, columns) == [tuple(r) for r in expected]


@pytest.fixture(scope="module")
def dashboard_warehouse(run_folder: Path, duckdb_template: Path) -> str:
    return session_warehouse(run_folder, duckdb_template)


@pytest.fixture(autouse=True)
def _fresh_cache():
    import streamlit as st

    st.cache_data.clear()


def test_revenue_page_shows_the_marts(dashboard_warehouse: str, monkeypatch) -> None:
    url = dashboard_warehouse
    at = _app(url, monkeypatch, "revenue")
    assert at.sidebar.selectbox(key="currency").value == "USD"
    month, mrr, arr, committed, usage, paying = query(
        url,
        "select month, mrr, arr, committed_mrr, usage_mrr, paying_customers from marts.mrr"
        " where currency = 'USD' order by month desc limit 1",
    )[0]
    shown = _metrics(at)
    assert shown[f"MRR {month:%Y-%m}"] == _fmt(mrr, 2, "USD") == "240.01 USD"
    assert shown[f"ARR {month:%Y-%m}"] == _fmt(arr, 2, "USD")
    assert shown["Committed MRR"] == _fmt(committed, 2, "USD")
    assert shown["Usage MRR"] == _fmt(usage, 2, "USD")
    assert shown["Paying customers"] == str(paying)
    _same(
        _frame(at, "mrr_USD"),
        url,
        "select month, committed_mrr, usage_mrr, mrr, arr"
        " from marts.mrr where currency = 'USD' order by month",
    )
    # January restated by the late usage (scenario 16): sub_a 20 + 35, sub_b1 5 + 1.50
    jan = _frame(at, "mrr_USD").iloc[0]
    assert (str(jan["month"]), jan["mrr"]) == ("2026-01-01", Decimal("61.50"))

    (invoiced,) = query(
        url, "select sum(invoiced_total) from marts.revenue_by_month where currency = 'USD'"
    )[0]
    assert _metrics(at)["Invoiced in range"] == _fmt(invoiced, 2, "USD")
    (collected,) = query(url, "select sum(amount_paid) from marts.payments where currency = 'USD'")[
        0
    ]
    assert _metrics(at)["Collected in range"] == _fmt(collected, 2, "USD")
    _same(
        _frame(at, "invoiced_USD"),
        url,
        "select month, invoices, invoiced_total"
        " from marts.revenue_by_month where currency = 'USD' order by month",
    )
    _same(
        _frame(at, "retention_USD"),
        url,
        "select cohort_month, month, nrr, grr, logo_churn"
        " from marts.retention_cohorts where currency = 'USD' order by cohort_month, month",
    )

    # another currency: its own figures, never added to the dollars
    at.sidebar.selectbox(key="currency").set_value("EUR").run()
    assert _metrics(at)["MRR 2025-12"] == "10.00 EUR"
    assert _metrics(at)["ARR 2025-12"] == "120.00 EUR"
    _same(
        _frame(at, "mrr_EUR"),
        url,
        "select month, mrr from marts.mrr where currency = 'EUR' order by month",
    )

    # the month range filters every table
    at.sidebar.select_slider(key="months").set_value((date(2025, 3, 1), date(2025, 4, 1))).run()
    assert len(_frame(at, "mrr_EUR")) == 2


def test_receivables_page(dashboard_warehouse: str, monkeypatch) -> None:
    url = dashboard_warehouse
    at = _app(url, monkeypatch, "receivables")
    currency = at.sidebar.selectbox(key="ar-currency").value
    (balance, count) = query(
        url,
        "select sum(open_balance), count(*) from marts.accounts_receivable"
        f" where currency = '{currency}'",
    )[0]
    assert _metrics(at)["Open balance"] == _fmt(balance, 2, currency)
    assert _metrics(at)["Open invoices"] == str(count)
    _same(
        _frame(at, f"receivables_{currency}"),
        url,
        "select invoice_id, open_balance,"
        f" aging_bucket from marts.accounts_receivable where currency = '{currency}'"
        " order by days_outstanding desc, invoice_number",
    )
    at.sidebar.selectbox(key="ar-currency").set_value("USD").run()
    assert _metrics(at)["Open balance"] == "55.50 USD"  # VV-000002 49.50 + VV-000003 6.00


def test_usage_page(dashboard_warehouse: str, monkeypatch) -> None:
    url = dashboard_warehouse
    at = _app(url, monkeypatch, "usage")
    (amount, events) = query(
        url, "select sum(amount), sum(event_count) from marts.usage_by_month where currency = 'USD'"
    )[0]
    assert _metrics(at)["Usage amount"] == _fmt(amount, 2, "USD")
    assert _metrics(at)["Events billed"] == f"{events:,}"
    top = _frame(at, "top_customers_USD")
    assert _rows(top.head(2), ["customer_id", "amount"]) == [
        ("cus_g3", Decimal("175.00")),
        ("cus_a", Decimal("40.00")),
    ]
    _same(
        _frame(at, "usage_USD"),
        url,
        "select month, customer_id, plan_code, metric_code,"
        " quantity, amount from marts.usage_by_month where currency = 'USD'"
        " order by month, customer_id, plan_code, metric_code",
    )
    at.sidebar.multiselect(key="plans").set_value(["growth"]).run()
    assert _metrics(at)["Usage amount"] == "185.01 USD"  # 0 + 0 + 10.01 + 175.00
    assert set(_frame(at, "usage_USD")["plan_code"]) == {"growth"}


def test_invoice_explorer_shows_lines_tiers_and_events(
    dashboard_warehouse: str, monkeypatch
) -> None:
    url = dashboard_warehouse
    at = _app(url, monkeypatch, "invoices")
    at.text_input(key="search").set_value("sub_g3").run()
    assert list(_frame(at, "invoices")["invoice_id"]) == ["sub_g3/2026-10-01"]
    assert _metrics(at)["Total"] == "175.00 USD"
    _same(
        _frame(at, "invoice_lines"),
        url,
        "select line_id, line_type, quantity, amount from"
        " marts.invoice_lines where invoice_id = 'sub_g3/2026-10-01' order by line_order, line_id",
    )
    tiers = _frame(at, "tiers")
    _same(
        tiers,
        url,
        "select tier_index, billed_units, flat_fee_applies, amount_exact from"
        " marts.rated_usage_tiers where subscription_id = 'sub_g3' and period_start = '2026-10-01'"
        " order by tier_index",
    )
    assert sum(tiers["amount_exact"]) == Decimal("175")
    _same(
        _frame(at, "line_events"),
        url,
        "select event_id, field_status from"
        " marts.invoice_line_events where subscription_id = 'sub_g3'"
        " and period_start = '2026-10-01'"
        " order by event_ts, event_id",
    )

    # a finalized invoice by its number, and one carrying adjustment lines
    at.text_input(key="search").set_value("VV-000002").run()
    assert _metrics(at)["Total"] == "49.50 USD"
    at.text_input(key="search").set_value("sub_a/2026-02").run()
    assert _metrics(at)["Adjustments"] == "4.95 USD"
    lines = _frame(at, "invoice_lines")
    assert list(lines[lines["line_type"] == "adjustment"]["amount"]) == [
        Decimal("25.00"),
        Decimal("-20.00"),
        Decimal("-0.50"),
        Decimal("0.45"),
    ]


def test_quality_page(dashboard_warehouse: str, monkeypatch) -> None:
    url = dashboard_warehouse
    at = _app(url, monkeypatch, "quality")
    (rejected, conflicts, duplicates) = query(
        url, "select sum(rejected), sum(conflicts), sum(duplicates) from raw.ingest_batches"
    )[0]
    shown = _metrics(at)
    assert (shown["Rejected (DLQ)"], shown["Conflicts"], shown["Duplicates"]) == (
        str(rejected),
        str(conflicts),
        str(duplicates),
    )
    (unbilled,) = query(url, "select count(*) from marts.unbilled_usage")[0]
    assert shown["Unbilled events"] == str(unbilled)
    assert shown["Critical failures"] == "0"
    # a link a browser on another machine can follow (the proxy's path), not the file path
    assert "[Data Docs](/quality-report/index.html)" in [m.value.split(":")[0] for m in at.markdown]
    assert any(DOCS_INDEX in c.value for c in at.caption)
    assert not any("file://" in m.value for m in at.markdown)
    monkeypatch.setenv("VALUEVERSE_QUALITY_REPORT_URL", "https://reports.example/quality/")
    moved = _app(url, monkeypatch, "quality")
    assert any("[Data Docs](https://reports.example/quality/)" in m.value for m in moved.markdown)
    _same(
        _frame(at, "expectation_results"),
        url,
        "select suite, expectation, success from"
        " quality.expectation_results where run_id = 'dash-run-1'"
        " order by success, critical desc, suite, expectation",
    )


def test_pipeline_page(dashboard_warehouse: str, monkeypatch) -> None:
    url = dashboard_warehouse
    at = _app(url, monkeypatch, "pipeline")
    (newest,) = query(url, "select max(event_ts) from raw.events")[0]
    assert _metrics(at)["Newest event (UTC)"] == str(newest)[:19] == "2026-10-07 00:00:00"
    _same(
        _frame(at, "landing_batches"),
        url,
        "select batch_id, accepted, rejected from"
        " raw.ingest_batches order by landed_at desc, batch_id",
    )
    _same(
        _frame(at, "builds"),
        url,
        "select invocation_id from analytics.valueverse_build_log"
        " order by finished_at desc limit 20",
    )


def test_missing_optional_tables_are_explained(
    dashboard_warehouse: str, monkeypatch, tmp_path
) -> None:
    bare = without_optional_tables(dashboard_warehouse, tmp_path)
    revenue = _app(bare, monkeypatch, "revenue")
    assert any(
        "No payments collected yet: run `valueverse payments collect`" in i.value
        for i in revenue.info
    )
    assert "MRR 2026-10" in _metrics(revenue)  # the rest of the page still renders
    receivables = _app(bare, monkeypatch, "receivables")
    assert any("valueverse payments collect" in i.value for i in receivables.info)
    quality = _app(bare, monkeypatch, "quality")
    assert any(
        "No data-quality run yet: run `valueverse quality run`" in i.value for i in quality.info
    )
    pipeline = _app(bare, monkeypatch, "pipeline")
    assert any("No verified build recorded yet" in i.value for i in pipeline.info)


def test_unbuilt_warehouse_says_to_build(monkeypatch, tmp_path) -> None:
    import duckdb

    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    for page in ("revenue", "usage", "invoices", "quality", "pipeline"):
        at = _app(f"duckdb://{tmp_path}/empty.duckdb", monkeypatch, page)
        assert any("run `valueverse build`" in w.value for w in at.warning), page


@pytest.mark.postgres
def test_pages_on_postgres(
    monkeypatch, tmp_path_factory: pytest.TempPathFactory, pg_template: str
) -> None:
    """The same readers on PostgreSQL: every page renders and shows the marts' figures."""
    with scratch_pg(template=pg_template) as url:
        build_warehouse(tmp_path_factory.mktemp("pg-dashboards"), url)
        revenue = _app(url, monkeypatch, "revenue")
        (mrr,) = query(
            url, "select mrr from marts.mrr where currency = 'USD' order by month desc limit 1"
        )[0]
        assert _metrics(revenue)["MRR 2026-10"] == _fmt(mrr, 2, "USD") == "240.01 USD"
        _same(
            _frame(revenue, "retention_USD"),
            url,
            "select cohort_month, month, nrr, grr, logo_churn from marts.retention_cohorts"
            " where currency = 'USD' order by cohort_month, month",
        )
        usage = _app(url, monkeypatch, "usage")
        (amount,) = query(
            url, "select sum(amount) from marts.usage_by_month where currency = 'USD'"
        )[0]
        assert _metrics(usage)["Usage amount"] == _fmt(amount, 2, "USD")
        invoices = _app(url, monkeypatch, "invoices")
        invoices.text_input(key="search").set_value("sub_g3").run()
        assert _metrics(invoices)["Total"] == "175.00 USD"
        assert len(_frame(invoices, "tiers")) == 3
        assert list(_frame(invoices, "line_events")["event_id"]) == ["evt_00004"]
        receivables = _app(url, monkeypatch, "receivables")
        assert _metrics(receivables)["Open balance"] == "120.00 EUR"
        quality = _app(url, monkeypatch, "quality")
        assert _metrics(quality)["Critical failures"] == "0"
        pipeline = _app(url, monkeypatch, "pipeline")
        assert _metrics(pipeline)["Newest event (UTC)"] == "2026-10-07 00:00:00"


def test_reader_waits_while_a_writer_holds_duckdb(tmp_path) -> None:
    """DuckDB has one writer: a reader retries for a moment instead of failing the page."""
    import subprocess
    import sys
    import time

    import duckdb

    from dashboards import queries

    path = tmp_path / "locked.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('locked', flush=True); time.sleep(1.5)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        assert queries.fetch(f"duckdb://{path}", "select 42 as x")["x"].tolist() == [42]
        assert time.monotonic() - started > 0.5  # it waited for the writer to go
    finally:
        holder.wait(timeout=10)
