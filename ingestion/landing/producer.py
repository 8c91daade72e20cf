"""`valueverse events produce`: a JSONL file onto the usage topic, one line a message.

Each non-blank line goes byte for byte (invalid ones too: the consumer, not the
producer, decides what is valid, so a test can send poison through the real
path). The key is the line's `customer_id` when the line parses as a JSON
object with a string one, else no key: keying keeps one customer's events in
one partition, in order, so first-write-wins follows the file's order for them.
The producer is idempotent (no duplicates from its own retries) and the
command returns only when every message is acknowledged.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import orjson
from confluent_kafka import KafkaError

from ingestion.landing import kafka_clients
from ingestion.landing.files import iter_lines
from ingestion.landing.kafka_clients import KafkaSettings, ensure_topics


class ProduceError(Exception):
    """Some messages were not acknowledged by the brokers."""


def key_of(line: bytes) -> bytes | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict):
        customer = doc.get("customer_id")
        if isinstance(customer, str) and customer:
            return customer.encode()
    return None


class _Acks:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.errors: list[KafkaError] = []  # the first few, for the message

    def __call__(self, err: KafkaError | None, _msg: object) -> None:
        if err is None:
            self.ok += 1
            return
        self.failed += 1
        if len(self.errors) < 3:
            self.errors.append(err)


def produce_file(settings: KafkaSettings, path: Path, timeout: float = 120.0, skip: int = 0) -> int:
    """Send every non-blank line of `path` but the first `skip` (sent another way); returns
    how many were acknowledged."""
    ensure_topics(settings, [settings.topic])
    producer = kafka_clients.producer(
        settings,
        {
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
            "message.max.bytes": 4 * 1024 * 1024,
        },
    )
    acks = _Acks()
    sent = 0
    topic = settings.topic
    for _number, line in islice(iter_lines(path), skip, None):
        while True:
            try:
                producer.produce(topic, value=line, key=key_of(line), on_delivery=acks)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(timeout)
    if left or acks.failed or acks.ok != sent:
        raise ProduceError(
            f"{sent - acks.ok} of {sent} message(s) not acknowledged by {settings.bootstrap}"
            f" (first errors: {[str(e) for e in acks.errors]})"
        )
    return acks.ok
