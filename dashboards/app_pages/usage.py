"""Usage: by metric, customer and plan over time, top customers, unbilled usage."""

from __future__ import annotations

import streamlit as st

from dashboards import queries, ui

TOP = 10

url = queries.warehouse_url()
st.title("Usage")
if ui.need_marts(url):
    currency, exponent = ui.currency_picker(url)
    if currency is None:
        st.info("No usage rated yet: land events and run `valueverse build`.")
        st.stop()
    data = queries.usage(url, currency)
    usage, unbilled = data["usage"], data["unbilled"]
    assert usage is not None and unbilled is not None
    start, end = ui.month_range(list(usage["month"]))
    plans = st.sidebar.multiselect("Plans", sorted(set(usage["plan_code"])), key="plans")
    customers = st.sidebar.multiselect(
        "Customers", sorted(set(usage["customer_id"])), key="customers"
    )
    usage = usage[(usage["month"] >= start) & (usage["month"] <= end)]
    if plans:
        usage = usage[usage["plan_code"].isin(plans)]
    if customers:
        usage = usage[usage["customer_id"].isin(customers)]
    st.caption(
        f"Usage rated in {currency}, by the month its billing period starts; a period still "
        "open counts as usage to date."
    )

    cols = st.columns(4)
    cols[0].metric("Usage amount", ui.money(usage["amount"].sum(), exponent, currency))
    cols[1].metric("Events billed", f"{int(usage['event_count'].sum()):,}")
    cols[2].metric("Customers", usage["customer_id"].nunique())
    cols[3].metric("Metrics", usage["metric_code"].nunique())

    st.subheader("By metric")
    by_metric = usage.groupby(["month", "metric_code"], as_index=False)[
        ["quantity", "event_count", "amount"]
    ].sum()
    fig = ui.chart(by_metric, "month", "amount", color="metric_code", y_title=currency)
    st.plotly_chart(fig, key="metric-chart")
    ui.table(by_metric, f"usage_by_metric_{currency}", exponent=exponent)

    st.subheader("By plan")
    by_plan = usage.groupby(["month", "plan_code"], as_index=False)[["event_count", "amount"]].sum()
    fig = ui.chart(by_plan, "month", "amount", color="plan_code", kind="line", y_title=currency)
    st.plotly_chart(fig, key="plan-chart")
    ui.table(by_plan, f"usage_by_plan_{currency}", exponent=exponent)

    st.subheader(f"Top {TOP} customers")
    top = (
        usage.groupby("customer_id", as_index=False)[["event_count", "amount"]]
        .sum()
        .sort_values(["amount", "customer_id"], ascending=[False, True])
        .head(TOP)
    )
    ui.table(top, f"top_customers_{currency}", exponent=exponent)
    with st.expander("Every customer, plan, metric and month"):
        ui.table(usage, f"usage_{currency}", exponent=exponent)

    st.subheader("Unbilled usage")
    unbilled = unbilled[(unbilled["month"] >= start) & (unbilled["month"] <= end)]
    if customers:
        unbilled = unbilled[unbilled["customer_id"].isin(customers)]
    if unbilled.empty:
        st.success("Every accepted event in this range is billed.")
    else:
        st.metric("Unbilled events", f"{int(unbilled['events'].sum()):,}")
        by_reason = unbilled.groupby(["month", "reason"], as_index=False)["events"].sum()
        st.plotly_chart(
            ui.chart(by_reason, "month", "events", color="reason"), key="unbilled-chart"
        )
        ui.table(unbilled, "unbilled_usage")
