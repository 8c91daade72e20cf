"""Data-quality suites over the warehouse, run with Great Expectations 1.x.

`run_quality(config, as_of)` validates four suites (landed_events,
rated_usage, invoice_lines, payments) on DuckDB or PostgreSQL, writes one row
per expectation (per billing period for failures that can be attributed) to
quality.expectation_results and one row to quality.runs, and builds a GE
Data Docs site. Finalization blocks the invoices a failing critical row's
scope overlaps; warnings are only reported.
"""

from ingestion.quality.config import QualityError
from ingestion.quality.report import QualityReport
from ingestion.quality.runner import run_quality

__all__ = ["QualityError", "QualityReport", "run_quality"]
