"""Shared by the tests that need the Kafka-protocol broker: one Tansu per module (import the
fixtures into the test module), each test with its own topics and group, and a reader."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer

from ingestion.demo.broker import LocalBroker, start_broker


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
