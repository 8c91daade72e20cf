"""Dagster definitions for ValueVerse: assets, schedules, sensors and checks.

Entry point `dagster_project.definitions:defs`; `defs/` holds one folder per domain and
`lib/` the shared helpers (see README.md, "Orchestration (Dagster)"). `make up` serves it.
"""
