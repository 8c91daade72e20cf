"""Accounts receivable: open balances by age, failed payments, dunning state (payments marts)."""

from __future__ import annotations

import streamlit as st

from dashboards import queries, ui

BUCKETS = ["0-30", "31-60", "61-90", "90+"]

url = queries.warehouse_url()
st.title("Accounts receivable")
data = queries.receivables(url)
payments, receivables, dunning = data["payments"], data["receivables"], data["dunning"]
if payments is None or receivables is None:
    st.info(
        "No payments collected yet: run `valueverse payments collect` "
        "(marts.payments and marts.accounts_receivable do not exist in this warehouse)."
    )
    st.stop()
if payments.empty:
    st.info("No invoice has been issued yet: run `valueverse invoices finalize`.")
    st.stop()

options = sorted(set(payments["currency"]))
currency = st.sidebar.selectbox("Currency", options, key="ar-currency")
exponent = queries.currency_exponent(url, currency)
customers = st.sidebar.multiselect(
    "Customers", sorted(set(payments["customer_id"])), key="ar-customers"
)
pay = payments[payments["currency"] == currency]
ar = receivables[receivables["currency"] == currency]
if customers:
    pay = pay[pay["customer_id"].isin(customers)]
    ar = ar[ar["customer_id"].isin(customers)]
st.caption(f"Figures in {currency}; balances in other currencies are under their own selection.")

cols = st.columns(4)
cols[0].metric("Open balance", ui.money(ar["open_balance"].sum(), exponent, currency))
cols[1].metric("Open invoices", len(ar))
over_90 = ar[ar["aging_bucket"] == "90+"]["open_balance"].sum()
cols[2].metric("Over 90 days", ui.money(over_90, exponent, currency))
failed = pay[pay["payment_status"].isin(["failed", "requires_action", "uncollectible"])]
cols[3].metric("Failed payments", len(failed))

st.subheader("Aging")
aging = (
    ar.groupby("aging_bucket")["open_balance"].sum().reindex(BUCKETS, fill_value=0).reset_index()
)
fig = ui.chart(aging, "aging_bucket", "open_balance", y_title=currency)
st.plotly_chart(fig, key="aging-chart")
ui.table(ar, f"receivables_{currency}", exponent=exponent)

st.subheader("Payment status")
status = pay.groupby("payment_status").size().reset_index(name="invoices")
st.plotly_chart(ui.chart(status, "payment_status", "invoices"), key="status-chart")

st.subheader("Failed payments")
if failed.empty:
    st.success("No failed payment.")
else:
    ui.table(failed, f"failed_payments_{currency}", exponent=exponent)

st.subheader("Dunning state")
if dunning is None:
    st.info("No dunning recorded yet (billing.dunning_events does not exist).")
else:
    dunning = dunning[dunning["invoice_id"].isin(set(pay["invoice_id"]))]
    if dunning.empty:
        st.success("No invoice in dunning.")
    else:
        ui.table(dunning, f"dunning_{currency}", exponent=exponent)
