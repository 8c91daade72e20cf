"""Dagster definitions for alerts."""
