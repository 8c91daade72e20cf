"""Where billing/dbt_runner.py still imports `open_sink` from; remove this module
once it imports it from ingestion.landing.sinks.backends (its file is being
rewritten elsewhere and was left untouched here)."""

from ingestion.landing.sinks.backends import open_sink

__all__ = ["open_sink"]
