"""The dead-letter topic: invalid messages, byte for byte (only the first bytes of one over
the size limit), with why and where from.

Every reject of a batch is produced to VALUEVERSE_DLQ_TOPIC and the producer is
flushed *before* the batch's offsets are committed, so a crash can repeat a
dead letter but never lose one (the warehouse copy in raw.rejected_events is
keyed by origin, so it is stored once). Headers (all UTF-8 text):

    valueverse.rule       stable rule code, e.g. `message.not_json`
    valueverse.detail     human-readable detail
    valueverse.origin     `kafka:<topic>/<partition>/<offset>`
    valueverse.topic / valueverse.partition / valueverse.offset   the same, split
    valueverse.original_bytes   only on a message over the size limit: its size; the value
                          is then only its first bytes (validation.KEPT_BYTES_OF_TOO_LARGE)
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from ingestion.landing import kafka_clients
from ingestion.landing.kafka_clients import KafkaSettings
from ingestion.landing.sinks.contract import RejectRow


class DeadLetterError(Exception):
    """The dead-letter topic did not acknowledge every message."""


def parse_origin(origin: str) -> tuple[str, int, int]:
    """`kafka:<topic>/<partition>/<offset>` -> (topic, partition, offset)."""
    body = origin.removeprefix("kafka:")
    topic, partition, offset = body.rsplit("/", 2)
    return topic, int(partition), int(offset)


def reject_headers(reject: RejectRow) -> list[tuple[str, str | bytes | None]]:
    headers: list[tuple[str, str | bytes | None]] = [
        ("valueverse.rule", reject.rule.encode()),
        ("valueverse.detail", reject.detail.encode()),
        ("valueverse.origin", reject.origin.encode()),
    ]
    if reject.origin.startswith("kafka:"):
        topic, partition, offset = parse_origin(reject.origin)
        headers += [
            ("valueverse.topic", topic.encode()),
            ("valueverse.partition", str(partition).encode()),
            ("valueverse.offset", str(offset).encode()),
        ]
    if reject.original_bytes is not None:
        headers.append(("valueverse.original_bytes", str(reject.original_bytes).encode()))
    return headers


class DeadLetters:
    """An idempotent producer to the dead-letter topic."""

    def __init__(self, settings: KafkaSettings):
        self.topic = settings.dlq_topic
        self.producer = kafka_clients.producer(
            settings, {"enable.idempotence": True, "linger.ms": 5}
        )
        self._errors: list[KafkaError] = []

    def _delivered(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self._errors.append(err)

    def send(self, rejects: list[RejectRow], timeout: float = 30.0) -> None:
        """Produce every reject and wait for all acknowledgements (raises if any failed)."""
        if not rejects:
            return
        self._errors.clear()
        for reject in rejects:
            while True:
                try:
                    self.producer.produce(
                        self.topic, value=reject.payload, headers=reject_headers(reject),
                        on_delivery=self._delivered,
                    )  # fmt: skip
                    break
                except BufferError:
                    self.producer.poll(0.1)
                except KafkaException as exc:  # e.g. message larger than the broker allows
                    raise DeadLetterError(str(exc)) from exc
        left = self.producer.flush(timeout)
        if left or self._errors:
            raise DeadLetterError(
                f"dead-letter topic {self.topic}: {left} unacknowledged, errors {self._errors[:3]}"
            )

    def close(self) -> None:
        self.producer.flush(10)
