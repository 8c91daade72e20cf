"""Dagster definitions for ValueVerse: assets, schedules, sensors and checks.

Filled in by the orchestration issue; see ../shared/ARCHITECTURE.md for the layout.
"""
