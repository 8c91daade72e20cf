"""Helpers shared by the definitions: settings from the environment, warehouse reads, the dbt
project and its translator, billing-period partitions, the Dagster instance configuration."""
