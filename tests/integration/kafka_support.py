"""Shared by the tests that need the Kafka-protocol broker: one Tansu per module (import the
fixtures into the test module), each test with its own topics and group; running the CLI and
the ingest service against it, reading a topic, waiting, and sample messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer

from ingestion.demo.broker import LocalBroker, start_broker
from tests.conftest import CLI, CliResult


@pytest.fixture(scope="module", name="broker")
def broker_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with start_broker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log") as running:
        yield running


@pytest.fixture(name="kafka_env")
def kafka_env_fixture(broker: LocalBroker) -> dict[str, str]:
    """Environment naming this test's own topics and group on the shared broker."""
    tag = uuid.uuid4().hex[:8]
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "VALUEVERSE_TOPIC": f"usage-{tag}",
        "VALUEVERSE_DLQ_TOPIC": f"usage-{tag}-dlq",
        "VALUEVERSE_GROUP": f"ingest-{tag}",
        "VALUEVERSE_TOPIC_PARTITIONS": "3",
        "VALUEVERSE_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "VALUEVERSE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    }


def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader-" + uuid.uuid4().hex[:6],
         "auto.offset.reset": "earliest", "enable.auto.commit": False,
         "session.timeout.ms": 2000, "heartbeat.interval.ms": 500}
    )  # fmt: skip
    consumer.subscribe([topic])
    got: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    got.append(msg)
    finally:
        consumer.close()
    return got


def vv(url: str, kenv: dict[str, str], *args: str, timeout: int = 300) -> CliResult:
    env = {**os.environ, **kenv, "VALUEVERSE_WAREHOUSE": url}
    proc = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def start_ingest(url: str, kenv: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """A long-running `ingest run` in its own process group (workers included)."""
    env = {**os.environ, **kenv, "VALUEVERSE_WAREHOUSE": url}
    with log.open("ab") as err:
        return subprocess.Popen(
            [CLI, "ingest", "run", *args],
            env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def pg_count(url: str, sql: str) -> int:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return -1


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def good_event(n: int, customer: str = "cus_dlq") -> bytes:
    return json.dumps(
        {"event_id": f"evt_{n}", "customer_id": customer, "metric": "api_calls",
         "timestamp": "2026-10-03T12:00:00Z", "quantity": n}
    ).encode()  # fmt: skip


POISON = [
    (b"\xff\xfe not utf-8 \x80", "message."),
    (b"{this is not json", "message.not_json"),
    (b'{"event_id": "evt_big", "customer_id": "c", "pad": "' + b"x" * 17_000 + b'"}',
     "message.too_large"),
    (b'{"event_id": 5, "customer_id": "c", "metric": "api_calls",'
     b' "timestamp": "2026-10-03T12:00:00Z"}', "event_id."),
    (b'{"event_id": "e", "customer_id": "c", "metric": "api_calls",'
     b' "timestamp": "2026-10-03T12:00:00Z", "quantity": [1]}', "quantity."),
]  # fmt: skip
