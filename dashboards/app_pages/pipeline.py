"""Pipeline: landing lag, newest event, the last landing batches and dbt builds."""

from __future__ import annotations

import streamlit as st

from dashboards import queries, ui

url = queries.warehouse_url()
st.title("Pipeline")
if ui.need_marts(url):
    data = queries.pipeline(url)
    batches, builds = data["batches"], data["builds"]
    assert data["totals"] is not None and batches is not None
    totals = data["totals"].iloc[0]
    cols = st.columns(4)
    cols[0].metric("Newest event (UTC)", str(totals["newest_event_at"])[:19])
    cols[1].metric("Last landing (UTC)", str(totals["last_landed_at"])[:19])
    if batches.empty or batches["newest_event_at"].isna().all():
        cols[2].metric("Landing lag, last batch", "–")
    else:
        last = batches.dropna(subset=["newest_event_at"]).iloc[0]
        lag = (last["landed_at"] - last["newest_event_at"]).total_seconds()
        cols[2].metric(
            "Landing lag, last batch",
            f"{lag / 3600:,.1f} h",
            help="landed_at - newest event time in the batch",
        )
    cols[3].metric("Batches", f"{int(totals['batches']):,}")

    st.subheader("Last landing batches")
    if not batches.empty:
        lagged = batches.dropna(subset=["newest_event_at"]).assign(
            lag_hours=lambda d: (d["landed_at"] - d["newest_event_at"]).dt.total_seconds() / 3600
        )
        if not lagged.empty:
            fig = ui.chart(
                lagged.sort_values("landed_at"),
                "landed_at",
                "lag_hours",
                kind="line",
                y_title="landing lag (h): landed_at - newest event",
            )
            st.plotly_chart(fig, key="lag-chart")
    ui.table(batches, "landing_batches")

    st.subheader("Last dbt builds")
    if builds is None or builds.empty:
        st.info("No verified build recorded yet (analytics.valueverse_build_log).")
    else:
        ui.table(builds, "builds")
