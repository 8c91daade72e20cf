"""Streamlit finance and usage dashboards over the dbt marts.

Filled in by the dashboards issue; see ../shared/ARCHITECTURE.md for the layout.
"""
