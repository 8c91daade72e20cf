"""Dagster definitions, one folder per domain (catalog, usage_events, dbt, quality, billing,
payments, notifications, alerts); `dagster_project.definitions` gathers them into one
`Definitions`."""
