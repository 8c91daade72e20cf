"""Run failures, recorded where a person finds them.

Dagster already shows a failed run in the UI's run list; this sensor adds two durable traces
that outlive the run storage's retention and need no UI: an ERROR log line from the sensor, and
one JSON line per failure in `$DAGSTER_HOME/alerts/run_failures.jsonl` (run id, job, time,
error). A file, not a warehouse table: a failure is often the warehouse being unavailable or
locked (DuckDB allows one writer), and the record must not depend on it. A pager or e-mail hook
(a later issue) would read the same event here.
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg


def failures_file() -> Path:
    home = os.environ.get("DAGSTER_HOME") or os.path.join(os.getcwd(), ".dagster_home")
    return Path(home) / "alerts" / "run_failures.jsonl"


def record_failure(run_id: str, job_name: str, message: str, path: Path | None = None) -> Path:
    """Append one failure record; returns the file written."""
    path = path or failures_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "job": job_name,
        "error": message,
    }
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    return path


@dg.run_failure_sensor(
    name="run_failure_recorder",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
    description="Logs every failed run and appends it to $DAGSTER_HOME/alerts/run_failures.jsonl.",
)
def run_failure_recorder(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    path = record_failure(run.run_id, run.job_name, message)
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {message} (recorded in {path})")
