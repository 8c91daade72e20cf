"""Dagster definitions for dbt."""
