"""Dagster definitions for catalog."""
