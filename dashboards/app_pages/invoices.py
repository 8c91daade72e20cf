"""Invoice explorer: search invoices; open one for its lines, tier math and events."""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboards import queries, ui

STATUSES = ["draft", "closed", "finalized"]

url = queries.warehouse_url()
st.title("Invoice explorer")
if ui.need_marts(url):
    currency, exponent = ui.currency_picker(url)
    text = st.text_input("Search invoice id, number or customer", key="search").strip()
    cols = st.columns(3)
    statuses = cols[0].multiselect("Status", STATUSES, key="statuses")
    since = cols[1].date_input("Periods from", value=date(2000, 1, 1), key="since")
    until = cols[2].date_input("Periods to", value=date(2100, 1, 1), key="until")
    found = queries.search_invoices(url, text, currency, since, until, tuple(statuses))
    st.caption(
        f"{len(found)} invoice(s) in {currency}"
        + (f" (the first {queries.SEARCH_ROWS})" if len(found) >= queries.SEARCH_ROWS else "")
    )
    ui.table(found, "invoices", exponent=exponent)

    if not found.empty:
        invoice_id = st.selectbox("Open invoice", list(found["invoice_id"]), key="invoice")
        head = found[found["invoice_id"] == invoice_id].iloc[0]
        exponent = int(head["currency_exponent"])
        cur = str(head["currency"])
        st.subheader(f"Invoice {head['invoice_number'] or invoice_id}")
        st.caption(
            f"{invoice_id} · customer {head['customer_id']} · plan {head['plan_code']} · "
            f"{head['period_start']} to {head['period_end']} · {head['status']}"
        )
        cols2 = st.columns(5)
        cols2[0].metric("Subtotal", ui.money(head["subtotal"], exponent, cur))
        cols2[1].metric("Discount", ui.money(head["discount_amount"], exponent, cur))
        cols2[2].metric("Tax", ui.money(head["tax_amount"], exponent, cur))
        cols2[3].metric("Adjustments", ui.money(head["adjustment_amount"], exponent, cur))
        cols2[4].metric("Total", ui.money(head["total"], exponent, cur))

        st.markdown("**Lines**")
        detail = queries.invoice(url, invoice_id)
        lines, rated, tiers, events = (
            detail["lines"],
            detail["rated"],
            detail["tiers"],
            detail["events"],
        )
        assert lines is not None and rated is not None and tiers is not None
        assert events is not None
        ui.table(lines, "invoice_lines", exponent=exponent)

        if not rated.empty:
            st.markdown("**How each usage line was priced**")
            ui.table(rated, "rated_usage", exponent=exponent)
            if not tiers.empty:
                st.markdown("**Tier math** (graduated and volume charges; sums to amount_exact)")
                ui.table(tiers, "tiers")
            metrics = dict(zip(rated["charge_index"], rated["metric_code"], strict=True))
            charge = st.selectbox(
                "Events behind usage line",
                list(metrics),
                format_func=lambda c: f"charge {c}: {metrics[c]}",
                key="charge",
            )
            shown = events[events["charge_index"] == charge].drop(columns="charge_index")
            count = int(rated[rated["charge_index"] == charge]["event_count"].iloc[0])
            st.caption(
                f"{len(shown)} of {count:,} event(s) shown "
                "(oldest first); events landed after a finalized invoice was issued are "
                "billed as adjustment lines on a later invoice."
            )
            ui.table(shown, "line_events")
