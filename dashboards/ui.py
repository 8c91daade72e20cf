"""Widgets and formatting shared by the pages: filters, money, tables with a CSV download.

Money is formatted from the marts' Decimal values (rounded half away from zero to the
currency's exponent, for display only); charts get floats, tables and CSVs the exact values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import queries
from ingestion.warehouse import redact_url

QUALITY_REPORT_URL_ENV = "VALUEVERSE_QUALITY_REPORT_URL"
# where the login proxy serves the Data Docs (deploy/Caddyfile), on the dashboards' own host
QUALITY_REPORT_URL = "/quality-report/index.html"


def quality_report_url() -> str:
    """The Data Docs link people follow: a URL, not the file path the run wrote, which a browser
    on another machine cannot open. $VALUEVERSE_QUALITY_REPORT_URL where it is served
    elsewhere, else the path the proxy serves it at beside the dashboards."""
    return (os.environ.get(QUALITY_REPORT_URL_ENV) or "").strip() or QUALITY_REPORT_URL


def money(value: Any, exponent: int, currency: str | None = None) -> str:
    """1234.5 -> '1,234.50 USD' (exponent 2); None -> '–'."""
    if value is None or (not isinstance(value, Decimal) and pd.isna(value)):
        return "–"
    q = Decimal(value).quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
    return f"{q:,}" + (f" {currency}" if currency else "")


def ratio(value: Any) -> str:
    """0.755 -> '75.5%'."""
    if value is None or (not isinstance(value, Decimal) and pd.isna(value)):
        return "–"
    q = (Decimal(value) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{q}%"


def currency_picker(url: str) -> tuple[str | None, int]:
    """Sidebar currency selector (figures are never summed across currencies)."""
    options = queries.currencies(url)
    if not options:
        return None, 2
    currency = st.sidebar.selectbox("Currency", options, key="currency")
    return currency, queries.currency_exponent(url, currency)


def month_range(months: Sequence[date], key: str = "months") -> tuple[date, date]:
    """Sidebar month range over the months present; the whole range by default."""
    options = sorted(set(months))
    if not options:
        today = date.today()
        return date(1970, 1, 1), today
    if len(options) == 1:
        return options[0], options[0]
    start, end = st.sidebar.select_slider(
        "Months",
        options=options,
        value=(options[0], options[-1]),
        format_func=lambda d: d.strftime("%Y-%m"),
        key=key,
    )
    return start, end


MONEY = {
    "amount",
    "subtotal",
    "discount_amount",
    "tax_amount",
    "adjustment_amount",
    "total",
    "invoiced_total",
    "collected",
    "amount_due",
    "amount_paid",
    "open_balance",
    "invoice_total",
    "committed_mrr",
    "usage_mrr",
    "mrr",
    "committed_arr",
    "usage_arr",
    "arr",
    "starting_mrr",
    "retained_mrr",
}
RATIOS = {"nrr", "grr", "logo_churn"}


def table(
    df: pd.DataFrame, name: str, caption: str | None = None, exponent: int | None = None
) -> None:
    """A dataframe and its CSV download (exact decimals as text). With `exponent`, money
    columns are displayed to the currency's minor unit (display only; the CSV is exact)."""
    if caption:
        st.caption(caption)
    config: dict[str, Any] = {
        c: st.column_config.NumberColumn(format="percent") for c in df.columns if c in RATIOS
    }
    if exponent is not None:
        config |= {
            c: st.column_config.NumberColumn(format=f"%.{exponent}f")
            for c in df.columns
            if c in MONEY
        }
    st.dataframe(df, hide_index=True, key=f"table-{name}", column_config=config or None)
    st.download_button(
        f"Download {name}.csv",
        df.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv-{name}",
        on_click="ignore",
    )


def need_marts(url: str) -> bool:
    """False (and an explanation) when the revenue marts are not built yet."""
    if queries.has(url, "marts.mrr", "marts.usage_by_month", "marts.landing_batches"):
        return True
    st.warning(
        "The revenue marts are not built in this warehouse yet: run `valueverse build` "
        f"(warehouse: {redact_url(url)})."
    )
    return False


# --- charts: plotly graph_objects (plotly.express costs ~80 ms a figure, these ~5 ms) ----


def _number(value: Any) -> float | None:
    return (
        None
        if value is None or (not isinstance(value, Decimal) and pd.isna(value))
        else float(value)
    )


def chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    color: str | None = None,
    kind: str = "bar",
    barmode: str = "stack",
    y_title: str | None = None,
) -> go.Figure:
    """A bar (stacked or grouped) or line chart, one trace per value of `color`."""
    fig = go.Figure()
    groups = [(None, df)] if color is None else list(df.groupby(color, sort=True))
    for name, part in groups:
        xs, ys = list(part[x]), [_number(v) for v in part[y]]
        label = None if name is None else str(name)
        if kind == "line":
            fig.add_trace(go.Scatter(x=xs, y=ys, name=label, mode="lines+markers"))
        else:
            fig.add_trace(go.Bar(x=xs, y=ys, name=label))
    fig.update_layout(
        barmode=barmode,
        xaxis_title=x,
        yaxis_title=y_title or y,
        legend_title=color,
        margin={"t": 30},
    )
    return fig


def heatmap(grid: pd.DataFrame, title: str) -> go.Figure:
    """A cohort grid (rows: cohorts, columns: months since start) of ratios, as percentages."""
    z = [[_number(v) for v in row] for row in grid.to_numpy()]
    text = [["" if v is None else f"{v:.0%}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in grid.columns],
            y=list(grid.index),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
        )
    )
    fig.update_layout(
        xaxis_title="months since start",
        yaxis_title="cohort",
        title=title,
        yaxis_autorange="reversed",
        margin={"t": 40},
    )
    return fig
