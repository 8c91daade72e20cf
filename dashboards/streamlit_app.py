"""ValueVerse finance dashboards: the router only (pages in app_pages/, readers in queries.py).

Run: `streamlit run dashboards/streamlit_app.py` (`make up`); the warehouse comes from
VALUEVERSE_WAREHOUSE like every other component.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboards/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="ValueVerse", page_icon=":material/monitoring:", layout="wide")

PAGES = [
    st.Page("app_pages/revenue.py", title="Revenue", icon=":material/payments:", default=True),
    st.Page("app_pages/receivables.py", title="Accounts receivable", icon=":material/receipt:"),
    st.Page("app_pages/usage.py", title="Usage", icon=":material/bar_chart:"),
    st.Page("app_pages/invoices.py", title="Invoice explorer", icon=":material/search:"),
    st.Page("app_pages/quality.py", title="Data quality", icon=":material/verified:"),
    st.Page("app_pages/pipeline.py", title="Pipeline", icon=":material/conveyor_belt:"),
    st.Page("app_pages/notifications.py", title="Notifications", icon=":material/send:"),
]

st.navigation(PAGES).run()
