"""Dagster definitions for billing."""
