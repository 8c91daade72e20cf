"""Notifications: what the outbox recorded and where it was delivered; failed deliveries
first, each with the exact command that sends it again."""

from __future__ import annotations

import streamlit as st

from dashboards import queries, ui

url = queries.warehouse_url()
st.title("Notifications")
data = queries.notifications(url)
counts, failing = data["counts"], data["failing"]
if counts is None or failing is None:
    st.info(
        "No notification endpoint yet: add one with `valueverse webhooks add --url URL "
        "--events '*'` (the notify tables do not exist in this warehouse)."
    )
    st.stop()

row = counts.iloc[0]
cols = st.columns(4)
cols[0].metric("Notifications recorded", f"{int(row['recorded']):,}")
cols[1].metric("Delivered", f"{int(row['delivered']):,}")
cols[2].metric("Failing deliveries", f"{len(failing):,}")
cols[3].metric("Enabled endpoints", f"{int(row['endpoints']):,}")

st.subheader("Failed deliveries")
if failing.empty:
    st.success("Every delivery's latest attempt succeeded (or is still to come).")
else:
    st.caption(
        "Failed ones are retried on the schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); "
        "`gave_up` ones only by a replay. Once the receiver works, run the command in `replay`, "
        "then `valueverse webhooks deliver` (or let the delivery sensor do it)."
    )
    failing = failing.assign(
        replay="valueverse webhooks replay "
        + failing["notification_id"]
        + " --endpoint "
        + failing["endpoint_id"]
    )
    ui.table(failing, "failed_deliveries")

for title, key in (("Endpoints", "endpoints"), ("Latest notifications", "notifications"),
                   ("Latest delivery attempts", "deliveries")):  # fmt: skip
    st.subheader(title)
    frame = data[key]
    assert frame is not None
    ui.table(frame, key)
