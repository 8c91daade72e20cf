"""Dagster definitions for usage_events."""
