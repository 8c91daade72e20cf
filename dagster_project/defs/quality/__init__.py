"""Dagster definitions for quality."""
