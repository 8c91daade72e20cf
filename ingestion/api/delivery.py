"""Producing a request's events and waiting, without blocking the server, for the broker's word.

One idempotent producer (`acks=all`) per server process. A background thread serves its
delivery reports and counts each request's acknowledgements, so a request waits for exactly
its own messages: the answer is 202 only when every one of them was acknowledged, and 503
when the broker refused one or did not answer in time. Messages still queued at a timeout
may be delivered later; the client's retry then sends duplicates, which landing counts by
event_id and never bills twice.

Why counted on the thread: it wakes the request's event loop once, when the last
acknowledgement (or the first refusal) arrives, not once per message. For a batch of 1,000
events that is one call into the loop instead of 1,000, each a write to the loop's wake-up
pipe and a future to settle.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import NamedTuple

from confluent_kafka import KafkaError

from ingestion.landing import kafka_clients
from ingestion.landing.kafka_clients import KafkaSettings


class NotAcknowledged(Exception):
    """The broker did not acknowledge every message of a request."""


class Message(NamedTuple):
    """One message to produce (a NamedTuple: one is made per event, and a tuple is several
    times cheaper to make than a frozen dataclass)."""

    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, str | bytes | None]]


class AckedProducer:
    # bounded: a queue that cannot take a request's messages answers 503 at once
    QUEUE_MESSAGES = 100_000
    # a message not delivered within this long is dropped by librdkafka (and reported)
    MESSAGE_TIMEOUT_MS = 30_000

    def __init__(self, settings: KafkaSettings) -> None:
        self.producer = kafka_clients.producer(
            settings,
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "queue.buffering.max.messages": self.QUEUE_MESSAGES,
                "message.timeout.ms": self.MESSAGE_TIMEOUT_MS,
            },
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-delivery", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def send(self, messages: Sequence[Message], timeout: float) -> None:
        """Produce `messages`; returns once all were acknowledged, else NotAcknowledged."""
        if not messages:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        acks = _Acks(loop, future, len(messages))
        produce = self.producer.produce
        for message in messages:
            try:
                produce(message.topic, value=message.value, key=message.key,
                        headers=message.headers, on_delivery=acks)  # fmt: skip
            except BufferError:
                raise NotAcknowledged("the producer's queue is full") from None
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise NotAcknowledged(f"no acknowledgement within {timeout:g} s") from None

    def ready(self, timeout: float = 2.0) -> bool:
        """Can the broker be reached (its metadata answered within `timeout`)?"""
        try:
            self.producer.list_topics(timeout=timeout)
        except Exception:
            return False
        return True

    def close(self, timeout: float = 10.0) -> int:
        """Flush what is queued (graceful shutdown); returns how many were left undelivered."""
        self._stop.set()
        self._thread.join()
        return int(self.producer.flush(timeout))


class _Acks:
    """A request's delivery reports, counted on the delivery thread (the only thread that
    serves them): the request's future is settled once, by the last acknowledgement or the
    first refusal."""

    __slots__ = ("loop", "future", "left")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None],
                 count: int) -> None:  # fmt: skip
        self.loop, self.future, self.left = loop, future, count

    def __call__(self, err: KafkaError | None, _msg: object) -> None:
        if self.left <= 0:  # settled already (a refusal came before)
            return
        self.left = 0 if err is not None else self.left - 1
        if self.left == 0:
            try:
                self.loop.call_soon_threadsafe(_settle, self.future, err)
            except RuntimeError:  # the loop is closed: the server is shutting down
                pass


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():  # the request gave up already
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(NotAcknowledged(f"the broker refused a message: {err.str()}"))
