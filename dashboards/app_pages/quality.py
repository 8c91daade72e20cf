"""Data quality: latest expectation results, Data Docs, rejects, conflicts, unbilled, freshness."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboards import queries, ui

url = queries.warehouse_url()
st.title("Data quality")
if ui.need_marts(url):
    data = queries.quality(url)
    assert data["totals"] is not None and data["unbilled"] is not None
    totals, unbilled = data["totals"].iloc[0], data["unbilled"]
    cols = st.columns(5)
    cols[0].metric("Rejected (DLQ)", f"{int(totals['rejected']):,}")
    cols[1].metric("Conflicts", f"{int(totals['conflicts']):,}")
    cols[2].metric("Duplicates", f"{int(totals['duplicates']):,}")
    cols[3].metric("Unbilled events", f"{int(unbilled['events'].sum()) if len(unbilled) else 0:,}")
    cols[4].metric("Accepted events", f"{int(totals['accepted']):,}")
    st.caption(
        "Landing counts over every batch (raw.ingest_batches); rejected lines are in "
        "raw.rejected_events and the DLQ topic, conflicts in raw.event_conflicts."
    )

    st.subheader("Freshness")
    now = datetime.now(UTC).replace(tzinfo=None)
    newest, landed = totals["newest_event_at"], totals["last_landed_at"]
    cols2 = st.columns(2)
    cols2[0].metric("Newest event", "–" if newest is None else str(newest)[:19], help="UTC")
    if landed is None:
        cols2[1].metric("Last landing", "–")
    else:
        hours = (now - landed.to_pydatetime()).total_seconds() / 3600
        cols2[1].metric("Last landing", str(landed)[:19], f"{hours:,.1f} h ago", delta_color="off")

    st.subheader("Unbilled usage by reason")
    ui.table(unbilled, "unbilled_by_reason")

    st.subheader("Expectations (latest run)")
    run, results = data["run"], data["results"]
    if run is None or results is None:
        st.info("No data-quality run yet: run `valueverse quality run`.")
    else:
        row = run.iloc[0]
        cols3 = st.columns(4)
        cols3[0].metric("Run at (UTC)", str(row["run_at"])[:16])
        cols3[1].metric("As of", str(row["as_of"]))
        cols3[2].metric("Status", "passed" if row["success"] else "failed")
        cols3[3].metric("Critical failures", int(row["critical_failures"]))
        docs = row["docs_index"]
        if docs:
            st.markdown(f"[Data Docs]({ui.quality_report_url()}): every expectation of every run")
            st.caption(f"Written by the run to {docs}")
        failed = results[~results["success"].astype(bool)]
        st.caption(f"{len(results)} expectations, {len(failed)} failed")
        ui.table(results, "expectation_results")
