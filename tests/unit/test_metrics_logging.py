"""The services' stderr is JSON lines only, also for what libraries log (a log shipper indexes
fields, and a test of the ingest service parses every line)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_library_warning_is_a_json_line_too() -> None:
    """psycopg logs "error ignored terminating <Copy>" when PostgreSQL restarts mid-COPY; it
    used to reach stderr as bare text (tests/integration/test_kafka_faults.py saw it)."""
    code = (
        "import logging; from ingestion.landing.metrics import configure_json_logging;"
        "configure_json_logging(); configure_json_logging();"
        "logging.getLogger('psycopg').warning('error ignored terminating Copy: lost');"
        "logging.getLogger('valueverse.ingest').info('batch landed', extra={'n': 1});"
        "logging.getLogger('some.library').debug('not shown')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["logger"], e["msg"]) for e in entries] == [
        ("psycopg", "error ignored terminating Copy: lost"),
        ("valueverse.ingest", "batch landed"),
    ]
