"""Revenue: MRR/ARR (committed vs usage), invoiced vs collected, retention by cohort."""

from __future__ import annotations

import streamlit as st

from dashboards import queries, ui

url = queries.warehouse_url()
st.title("Revenue")
if ui.need_marts(url):
    currency, exponent = ui.currency_picker(url)
    if currency is None:
        st.info("No invoices yet: land events and run `valueverse build`.")
        st.stop()
    st.caption(
        f"All figures in {currency}; currencies are never added together. Definitions: "
        "dbt/DECISIONLOG.md, *Revenue definitions*."
    )
    data = queries.revenue(url, currency)
    mrr, invoiced, collected, cohorts = (
        data["mrr"],
        data["invoiced"],
        data["collected"],
        data["retention"],
    )
    assert mrr is not None and invoiced is not None and cohorts is not None
    start, end = ui.month_range(list(mrr["month"]) + list(invoiced["month"]))
    mrr = mrr[(mrr["month"] >= start) & (mrr["month"] <= end)]
    invoiced = invoiced[(invoiced["month"] >= start) & (invoiced["month"] <= end)]

    st.subheader("MRR and ARR")
    if mrr.empty:
        st.info("No invoiced period in this range.")
    else:
        last = mrr.iloc[-1]
        month = last["month"].strftime("%Y-%m")
        cols = st.columns(3)
        cols[0].metric(f"MRR {month}", ui.money(last["mrr"], exponent, currency))
        cols[1].metric(f"ARR {month}", ui.money(last["arr"], exponent, currency))
        cols[2].metric("Paying customers", int(last["paying_customers"]))
        cols2 = st.columns(3)
        cols2[0].metric("Committed MRR", ui.money(last["committed_mrr"], exponent, currency))
        cols2[1].metric("Usage MRR", ui.money(last["usage_mrr"], exponent, currency))
        cols2[2].metric("Committed ARR", ui.money(last["committed_arr"], exponent, currency))
        chart = mrr.melt(
            id_vars="month", value_vars=["committed_mrr", "usage_mrr"], var_name="kind"
        )
        fig = ui.chart(chart, "month", "value", color="kind", y_title=currency)
        st.plotly_chart(fig, key="mrr-chart")
        ui.table(mrr, f"mrr_{currency}", exponent=exponent)

    st.subheader("Invoiced vs collected")
    if collected is None:
        st.info(
            "No payments collected yet: run `valueverse payments collect` "
            "(marts.payments does not exist in this warehouse)."
        )
        both = invoiced
    else:
        both = invoiced.merge(collected, on="month", how="left")
        both["collected"] = both["collected"].map(lambda v: 0 if v is None or v != v else v)
    if both.empty:
        st.info("No invoices in this range.")
    else:
        cols3 = st.columns(2)
        cols3[0].metric(
            "Invoiced in range", ui.money(both["invoiced_total"].sum(), exponent, currency)
        )
        if collected is not None:
            cols3[1].metric(
                "Collected in range", ui.money(both["collected"].sum(), exponent, currency)
            )
        value_vars = ["invoiced_total"] + (["collected"] if collected is not None else [])
        chart = both.melt(id_vars="month", value_vars=value_vars, var_name="kind")
        fig = ui.chart(chart, "month", "value", color="kind", barmode="group", y_title=currency)
        st.plotly_chart(fig, key="invoiced-chart")
        ui.table(both, f"invoiced_{currency}", exponent=exponent)

    st.subheader("Retention by monthly cohort")
    cohorts = cohorts[(cohorts["cohort_month"] >= start) & (cohorts["cohort_month"] <= end)]
    if cohorts.empty:
        st.info("No cohort in this range.")
    else:
        measure = st.radio(
            "Measure",
            ["nrr", "grr", "logo_churn"],
            horizontal=True,
            format_func=lambda m: {"nrr": "NRR", "grr": "GRR", "logo_churn": "Logo churn"}[m],
        )
        grid = cohorts.assign(cohort=cohorts["cohort_month"].map(lambda m: m.strftime("%Y-%m")))
        heat = grid.pivot(index="cohort", columns="months_since_start", values=measure)
        fig = ui.heatmap(heat, {"nrr": "NRR", "grr": "GRR", "logo_churn": "Logo churn"}[measure])
        st.plotly_chart(fig, key="cohort-chart")
        ui.table(cohorts, f"retention_{currency}", exponent=exponent)
