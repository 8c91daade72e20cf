"""Observability of the ingestion service: Prometheus metrics and JSON-line logs.

Metrics are module-level (one registry per process, like every Prometheus
client) and served by `serve(port)` on /metrics. Logs are one JSON object per
line on stderr, so a log shipper can index fields (partition, offsets, counts)
without parsing prose; nothing secret is ever logged (URLs are redacted).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram, start_http_server

CONSUMED = Counter("valueverse_ingest_consumed", "Kafka messages consumed")
LANDED = Counter("valueverse_ingest_landed", "Events landed (accepted) in the warehouse")
DUPLICATES = Counter("valueverse_ingest_duplicates", "Duplicate events (same id, same content)")
CONFLICTS = Counter("valueverse_ingest_conflicts", "Conflicting events (same id, other content)")
REJECTED = Counter("valueverse_ingest_rejected", "Invalid messages sent to the dead-letter topic")
BATCHES = Counter("valueverse_ingest_batches", "Batches written to the warehouse")
REFUSED_BATCHES = Counter(
    "valueverse_ingest_refused_batches",
    "Batches the warehouse refused for good, dead-lettered (rule warehouse.refused)",
)
WAREHOUSE_RETRIES = Counter(
    "valueverse_ingest_warehouse_retries", "Failed warehouse writes retried after a back-off"
)
BATCH_LATENCY = Histogram(
    "valueverse_ingest_batch_latency_seconds",
    "From a batch's first message polled to its offsets committed",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
LAG = Gauge(
    "valueverse_ingest_consumer_lag",
    "Messages behind the partition end, from the watermarks cached with fetches (approximate)",
    ["topic", "partition"],
)
NEWEST_EVENT = Gauge(
    "valueverse_ingest_newest_event_timestamp_seconds",
    "Unix time of the newest event timestamp landed so far",
)


def serve(port: int) -> int:
    """Serve /metrics on `port` (0: any free port); returns the bound port. Loopback unless
    VALUEVERSE_METRICS_HOST says otherwise (compose sets 0.0.0.0 inside its own network, where
    Prometheus scrapes it; the port is not published)."""
    host = os.environ.get("VALUEVERSE_METRICS_HOST") or "127.0.0.1"
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the `extra` fields."""

    _STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Route the `valueverse` loggers to stderr as JSON lines, and the libraries' warnings too
    (psycopg, for one, logs "error ignored terminating <Copy>" when the server goes away
    mid-COPY: without a handler of our own, Python printed it as a bare text line). Idempotent."""
    logger = logging.getLogger("valueverse")
    logger.setLevel(level)
    logger.propagate = False
    root = logging.getLogger()
    if root.level > logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.WARNING)
    for target in (logger, root):
        if not any(getattr(h, "_valueverse_json", False) for h in target.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            handler._valueverse_json = True  # type: ignore[attr-defined]
            target.addHandler(handler)


def epoch(ts: datetime) -> float:
    """Naive-UTC datetime (how events store time) as Unix seconds."""
    return ts.replace(tzinfo=UTC).timestamp()
