"""The demo's share of the sample sent through the usage API, as a client would send it.

Why a share and not the whole sample: the demo shows both ways events reach the usage topic,
the API (live usage) and `events produce` (bulk files), landing as one stream; the first
lines go through the API, the rest through `produce_file`.

Why one connection and one batch after the other: each request is answered only once the
broker acknowledged its events, so the next batch is produced after the previous one. The
file's order within each customer's partition is kept, first-write-wins picks the same
duplicates and conflicts as when the whole file is produced, and the invoices do not change.

The server is a real `valueverse api serve` process on the demo's broker and warehouse (it
reads its API keys there and records its rejects, so it is stopped before the landing
writes). Its key is made before it starts and revoked once the share is sent. Lines the API
rejects are answered as rejects, go to the dead-letter topic, and are recorded in
raw.rejected_events by the API itself (the landing records the lines it rejects).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from ingestion.api.keys import create_key, revoke_key
from ingestion.demo.broker import free_port
from ingestion.landing.files import iter_lines
from ingestion.landing.kafka_clients import KafkaSettings
from ingestion.warehouse import ValueVerseError, WarehouseConfig

BATCH_EVENTS = 1000  # the server's default limit per request
START_TIMEOUT_S = 60


class ApiShareFailed(ValueVerseError):
    """The API server did not start or did not accept a batch (the demo stops, saying why)."""


@dataclass(frozen=True)
class ApiShare:
    sent: int  # lines posted
    requests: int
    accepted: int
    rejected: int  # answered as rejects: on the dead-letter topic and in raw.rejected_events
    seconds: float


@dataclass(frozen=True)
class RunningApi:
    port: int
    pid: int  # the server's process (with --workers N, the parent of the N workers)


def api_env(config: WarehouseConfig, settings: KafkaSettings) -> dict[str, str]:
    """The environment of a server on this warehouse, broker and topics."""
    return {
        "VALUEVERSE_WAREHOUSE": config.url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap,
        "VALUEVERSE_TOPIC": settings.topic,
        "VALUEVERSE_DLQ_TOPIC": settings.dlq_topic,
    }


@contextmanager
def api_server(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[RunningApi]:
    """A `valueverse api serve` process (its logs in `log_path`), yielded once /healthz
    answers; stopped gracefully (SIGTERM: requests in flight finish)."""
    port = free_port()
    cmd = [sys.executable, "-m", "ingestion.cli", "api", "serve", "--port", str(port),
           "--workers", str(workers)]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_healthy(process, port, log_path)
        yield RunningApi(port, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(process: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ApiShareFailed(f"the API server exited with status {process.returncode}; "
                                 f"see {log_path}")  # fmt: skip
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    raise ApiShareFailed(f"the API server did not answer within {START_TIMEOUT_S} s; "
                         f"see {log_path}")  # fmt: skip


def count_lines(path: Path) -> int:
    """Non-blank lines: what `produce_file` sends, one message each."""
    return sum(1 for _ in iter_lines(path))


def send_share(config: WarehouseConfig, settings: KafkaSettings, events_path: Path,
               lines: int, log_path: Path) -> ApiShare:  # fmt: skip
    """POST the first `lines` lines of `events_path` as NDJSON batches through a server of its
    own; returns what the API answered."""
    key, token = create_key(config, "valueverse demo", ["events:write"],
                            requests_per_second=10_000, events_per_second=1_000_000)  # fmt: skip
    try:
        with api_server(api_env(config, settings), log_path) as server:
            return _post(server.port, token, events_path, lines)
    finally:
        revoke_key(config, key.key_id)


def _post(port: int, token: str, events_path: Path, lines: int) -> ApiShare:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    sent = requests = accepted = rejected = 0
    chosen = (line for _number, line in islice(iter_lines(events_path), lines))
    try:
        while batch := list(islice(chosen, BATCH_EVENTS)):
            connection.request("POST", "/v1/events", b"\n".join(batch) + b"\n", headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 202:
                lines_sent = f"lines {sent + 1}-{sent + len(batch)}"
                raise ApiShareFailed(f"the API answered {response.status} to {lines_sent}: "
                                     f"{answer[:300]!r}")  # fmt: skip
            reply = json.loads(answer)
            sent, requests = sent + len(batch), requests + 1
            accepted += reply["accepted"]
            rejected += len(reply["rejected"])
    finally:
        connection.close()
    return ApiShare(sent, requests, accepted, rejected, time.perf_counter() - started)
