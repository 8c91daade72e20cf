"""The Kafka ingestion service: `valueverse ingest run`.

poll -> batch -> validate + encode (worker processes) -> dead letters (flushed)
-> sink.write (one warehouse transaction) -> commit the batch's offsets.

Exactly-once *effect* without Kafka transactions: offsets are committed only
after the warehouse transaction that holds a batch has committed, so a crash
replays at most the unwritten tail; the replay is harmless because the sink's
first-write-wins ledger dedups events by event_id and stores rejects keyed by
(origin, payload hash), and origins are `kafka:<topic>/<partition>/<offset>`.
A write that fails for a while (the warehouse down, busy, restarting) is retried;
one the warehouse refuses for good (failures.py) is dead-lettered, message by
message, and the stream goes on.
Messages are validated by `Batch.validate`, exactly as `events load` does for files.

Threads and processes: validation and COPY encoding are pure Python
(GIL-bound), so worker processes prepare batches (messages and results cross
through shared memory, handoff.py); a writer thread writes them
to the warehouse strictly in the order they were cut (the database call
releases the GIL) while the main thread keeps polling. All consumer calls
(poll, commit, rebalance) stay on the main thread: it commits the offsets the
writer reports as landed. Offsets only ever move forward and first-write-wins
follows partition order.
Model: getsentry/arroyo (a strategy per step, commit only what is done).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from opentelemetry.trace import Link

from ingestion.landing import failures, handoff, kafka_clients, metrics, tracing
from ingestion.landing.batch import Batch, reject_row, warm_up
from ingestion.landing.batching import (
    Backoff,
    BatchPolicy,
    IdleTracker,
    OpenBatch,
    TopicPartitionKey,
    merge_offsets,
)
from ingestion.landing.dlq import DeadLetters
from ingestion.landing.fastlane import Lines
from ingestion.landing.kafka_clients import KafkaSettings, ensure_topics
from ingestion.landing.sinks import backends
from ingestion.landing.sinks.contract import Counts, Encoder, EventSink, PreparedBatch, RejectRow
from ingestion.landing.validation import Reject
from ingestion.warehouse import WarehouseConfig, env_int

log = logging.getLogger("valueverse.ingest")
T = TypeVar("T")

# Prefetch settings (shared with the benchmark's bare consumer). librdkafka stops
# fetching a partition whose local queue holds `queued.min.messages` (default
# 100k) and then waits `fetch.queue.backoff.ms` (default 1 s) before it looks
# again: with a 50k-message batch that pause, not the broker or the CPU, set the
# rate (235k/s bare consume; 660k/s with the queue bounded by size alone).
# Memory stays bounded by `queued.max.messages.kbytes`.
FETCH_CONFIG: dict[str, Any] = {
    "fetch.wait.max.ms": 100,  # an idle partition reports its end quickly
    "fetch.max.bytes": 64 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
    "queued.min.messages": 10_000_000,
    "fetch.queue.backoff.ms": 20,
}


def prepare_messages(
    encode: Encoder, topic: str, values: Lines, partitions: np.ndarray, offsets: np.ndarray
) -> tuple[PreparedBatch, datetime | None]:
    """Validate and encode one batch of messages (runs in a worker process).

    Returns the sink-ready batch and its newest event timestamp (for metrics).
    """
    batch = Batch(source=f"kafka:{topic}")
    origins = pc.binary_join_element_wise(  # kafka:<topic>/<partition>/<offset>, column-wise
        f"kafka:{topic}/", pc.cast(pa.array(partitions), pa.string()), "/",
        pc.cast(pa.array(offsets), pa.string()), "",
    )  # fmt: skip
    batch.extend(values, origins)
    validated = batch.validate()
    return validated.prepare(encode), validated.newest()


def _worker_pid() -> int:
    """Submitted once at start-up so the pool forks its workers before any
    Kafka or database thread exists."""
    return os.getpid()


class Abandoned(Exception):
    """A stop was requested while a batch could not be written: leave it uncommitted."""


@dataclass
class _Pending:
    """A cut batch: being prepared (future) or prepared, with the offsets it covers."""

    result: Future[handoff.Parcel]
    offsets: dict[TopicPartitionKey, int]
    started: float
    messages: int
    # prepare_messages' arguments (the messages), kept until the batch is written: a batch
    # the warehouse refuses is dead-lettered message by message
    inputs: handoff.Parcel
    slots: tuple[int, ...] = ()  # shared-memory slots of its arguments and result
    links: list[Link] = field(default_factory=list)  # traces of the requests it lands


def _refused_rejects(
    topic: str,
    values: Lines,
    partitions: np.ndarray,
    offsets: np.ndarray,
    reason: str,
    rejected: set[str],
) -> list[RejectRow]:
    """The messages of a batch the warehouse refused for good, as rejects (rule
    `warehouse.refused`), except those in `rejected` (origins already rejected by
    validation, with their own rule)."""
    reject = Reject("warehouse.refused", f"the warehouse refused its batch: {reason}")
    rows = []
    for value, partition, offset in zip(values, partitions.tolist(), offsets.tolist(), strict=True):
        origin = f"kafka:{topic}/{partition}/{offset}"
        if origin not in rejected:
            rows.append(reject_row(origin, value, reject))
    return rows


class IngestService:
    """One consumer-group member landing the usage topic into the warehouse."""

    def __init__(
        self,
        settings: KafkaSettings,
        warehouse: WarehouseConfig,
        policy: BatchPolicy | None = None,
        workers: int | None = None,
        poll_batch: int = 5_000,
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self._encode = backends.encoder(warehouse)  # known before the sink opens (after the fork)
        self.policy = policy or BatchPolicy()
        self.workers = workers if workers is not None else default_workers()
        self.poll_batch = poll_batch
        self.total = Counts()
        self.stopping = False
        self.transient = failures.TRANSIENT
        self._open = OpenBatch(self.policy)
        self._values: list[bytes] = []
        self._tracing = tracing.enabled()  # read headers only when spans go somewhere
        self._headers: list[list[tuple[str, bytes]] | None] = []
        self._partitions: list[int] = []
        self._offsets: list[int] = []
        # cut batches, in order, for the writer thread; the queue itself is unbounded:
        # `_slots` caps the batches cut but not yet written, so memory stays flat
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._slots = threading.Semaphore(max(1, self.workers) + 1)
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        # offsets of written batches, committed by the main thread (librdkafka's
        # synchronous commit from another thread waits for the main thread's poll)
        self._written: dict[TopicPartitionKey, int] = {}
        self._committed: dict[TopicPartitionKey, int] = {}
        self._written_lock = threading.Lock()
        self._lag_updated = 0.0
        self._idle = IdleTracker()
        self._pool: ProcessPoolExecutor | None = None
        self._handoff: handoff.Slots | None = None
        self._sink: EventSink | None = None
        self._consumer: Consumer | None = None
        self._dlq: DeadLetters | None = None
        self._newest = 0.0
        # perf_counter() when the first message arrived: the benchmark's rate is
        # measured from here, like its bare consumer's (group join excluded)
        self.first_message_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self, *_args: object) -> None:
        """Signal handler: finish (or abandon) the current batch, then exit cleanly."""
        if not self.stopping:
            log.info("stop requested: finishing the current batch")
        self.stopping = True

    def run(self, until_idle: bool = False) -> Counts:
        if self.workers >= 1:  # fork the workers before any Kafka/DB thread or socket exists
            warm_up([self._encode])  # once here rather than once in every forked worker
            # slots: arguments and result of every batch in flight (see _cut's back-pressure)
            self._pool, self._handoff = handoff.fork_pool(self.workers, 2 * (self.workers + 3))
            self._pool.submit(_worker_pid).result()
        try:
            ensure_topics(self.settings, [self.settings.topic, self.settings.dlq_topic])
            self._sink = self._retry(lambda: backends.open_sink(self.warehouse), "open warehouse")
            self._dlq = DeadLetters(self.settings)
            self._consumer = kafka_clients.consumer(self.settings, self._consumer_config())
            self._consumer.subscribe(
                [self.settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )  # fmt: skip
            log.info(
                "consuming",
                extra={"topic": self.settings.topic, "group": self.settings.group,
                       "warehouse": self.warehouse.redacted(), "workers": self.workers},
            )  # fmt: skip
            self._writer = threading.Thread(target=self._write_loop, name="writer", daemon=True)
            self._writer.start()
            self._loop(until_idle)
        except Abandoned:
            log.warning("stopped with an unwritten batch: its offsets were not committed")
        finally:
            self._shutdown()
        return self.total

    def _consumer_config(self) -> dict[str, Any]:
        """The consumer's own properties (kafka_clients adds the brokers and security)."""
        return {
            "group.id": self.settings.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            **FETCH_CONFIG,
            **self.settings.extra,
        }

    def _shutdown(self) -> None:
        """Close everything; drop the client objects so their threads stop now."""
        if self._writer is not None:
            self.stopping = True  # a batch still failing now is abandoned, uncommitted
            self._queue.put(None)
            self._writer.join(timeout=60)
            self._writer = None
        if self._consumer is not None:
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("consumer close failed", extra={"error": str(exc)})
            self._consumer = None
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None
        if self._sink is not None:
            try:
                self._sink.close()
            except self.transient:
                pass
            self._sink = None
        if self._pool is not None:
            # wait: an un-joined pool races the interpreter's exit hook (EBADF noise)
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._handoff is not None:
            self._handoff.close()
            self._handoff = None

    # ------------------------------------------------------------------ the loop

    def _loop(self, until_idle: bool) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self.stopping:
            timeout = min(0.5, self._open.time_left(time.monotonic()))
            messages = consumer.consume(num_messages=self.poll_batch, timeout=timeout)
            now = time.monotonic()
            good = [msg for msg in messages if msg.error() is None]
            self._add(good, now)
            metrics.CONSUMED.inc(len(good))
            if len(good) < len(messages):
                self._events(messages)
            if self._writer_error is not None:
                raise self._writer_error
            self._commit_written(asynchronous=True)
            if now - self._lag_updated >= 1.0:
                self._update_lag()
                self._lag_updated = now
            if self._open.is_due(now, writer_idle=not self._queue.unfinished_tasks):
                self._cut()
            if until_idle and self._idle.idle():
                self._cut()
                self._drain()
                if self._idle.idle():  # nothing arrived while we wrote
                    return
        self._cut()  # stopping: finish what was polled, or abandon it (Abandoned)
        self._drain()

    def _events(self, messages: list[Any]) -> None:
        """The non-message events of a poll: ends of partitions, errors.

        Called after the poll's messages were added; an end of partition counts
        only if no message of that partition came after it in the poll.
        """
        eof = KafkaError._PARTITION_EOF
        last_message: dict[int, int] = {}
        for index, msg in enumerate(messages):
            if msg.error() is None:
                last_message[msg.partition()] = index
        for index, msg in enumerate(messages):
            err = msg.error()
            if err is None:
                continue
            if err.code() == eof:
                if last_message.get(msg.partition() or 0, -1) < index:
                    self._idle.end_of_partition((msg.topic() or "", msg.partition() or 0))
            elif err.fatal():
                raise KafkaException(err)
            else:
                log.warning("kafka error", extra={"error": str(err)})

    def _add(self, messages: list[Any], now: float) -> None:
        """Add one poll's messages to the open batch, cutting it whenever it is full.

        Column by column (a list comprehension per field) rather than one method
        call per message: this thread feeds every worker. The service
        subscribes to one topic, so the topic is the configured one.
        """
        if messages and self.first_message_at is None:
            self.first_message_at = time.perf_counter()
        topic, start = self.settings.topic, 0
        while start < len(messages):
            room = max(1, self.policy.max_messages - self._open.messages)
            chunk = messages[start : start + room]
            start += len(chunk)
            values = [msg.value() or b"" for msg in chunk]
            partitions = [msg.partition() for msg in chunk]
            offsets = [msg.offset() for msg in chunk]
            self._values += values
            if self._tracing:  # the requests' traces (a batch links at most MAX_LINKS)
                self._headers += [msg.headers() for msg in chunk]
            self._partitions += partitions
            self._offsets += offsets
            self._open.add_many(topic, partitions, offsets, sum(map(len, values)), now)
            self._idle.messages(topic, set(partitions))
            if self._open.is_full():
                self._cut()

    def _cut(self) -> None:
        """Close the open batch and hand it to a worker (or prepare it inline)."""
        if not self._open.messages:
            return
        started = self._open.started or time.monotonic()
        messages = self._open.messages
        to_commit = self._open.cut()
        args = (self._encode, self.settings.topic, Lines.of(self._values),
                np.array(self._partitions, np.int32), np.array(self._offsets))  # fmt: skip
        self._values, self._partitions, self._offsets = [], [], []
        links, self._headers = tracing.links(self._headers), []
        future: Future[handoff.Parcel]
        slots: tuple[int, ...]
        if self._pool is not None and self._handoff is not None:
            arg_slot, result_slot = self._free_slot(), self._free_slot()
            inputs = self._handoff.put(arg_slot, args)
            future = self._pool.submit(handoff.call, prepare_messages, inputs, result_slot)
            slots = (arg_slot, result_slot)
        else:
            future, slots, inputs = Future(), (), handoff.Parcel(-1, inline=args)
            future.set_result(handoff.Parcel(-1, inline=prepare_messages(*args)))
        while not self._slots.acquire(timeout=0.1):  # back-pressure from the writer
            if self._writer_error is not None:
                raise self._writer_error
        self._queue.put(_Pending(future, to_commit, started, messages, inputs, slots, links))

    def _free_slot(self) -> int:
        """A free shared-memory slot (waits for the writer to hand one back)."""
        assert self._handoff is not None
        while (slot := self._handoff.acquire(timeout=0.1)) is None:
            if self._writer_error is not None:
                raise self._writer_error
        return slot

    def _release_slots(self, item: _Pending) -> None:
        """Hand a batch's slots back once its worker is done with them (also when
        the batch was skipped after a failure: a running worker still writes)."""
        if self._handoff is None or not item.slots:
            return
        futures.wait([item.result])
        for slot in item.slots:
            self._handoff.release(slot)

    def _write_loop(self) -> None:
        """The writer thread: batches strictly in cut order; after a failure, none.

        Warehouse and broker calls release the GIL, so the main thread keeps
        polling and feeding the workers while a batch is being written.
        """
        while (item := self._queue.get()) is not None:
            try:
                if self._writer_error is None:
                    self._write(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                self._writer_error = exc
            finally:
                self._release_slots(item)
                self._slots.release()
                self._queue.task_done()
        self._queue.task_done()

    def _drain(self) -> None:
        """Wait until every cut batch is written (raises what the writer raised)."""
        self._queue.join()
        self._commit_written(asynchronous=False)
        if self._writer_error is not None:
            raise self._writer_error

    def _write(self, item: _Pending) -> None:
        """Dead letters, then the warehouse transaction, then (only then) the offsets.

        A batch the warehouse refuses for good is dead-lettered instead (_refused), and
        its offsets are committed all the same: the stream goes on.
        """
        t0 = time.monotonic()
        parcel = item.result.result()
        prepared, newest = self._handoff.take(parcel) if self._handoff else parcel.inline
        dlq = self._dlq
        assert dlq is not None
        t1 = time.monotonic()
        self._retry(lambda: dlq.send(prepared.rejects), "dead-letter produce")
        t2 = time.monotonic()
        error = None
        try:
            counts = self._retry(lambda: self._sink_write(prepared), "warehouse write")
        except Exception as exc:
            if not failures.is_permanent(exc):
                raise
            error = failures.describe(exc)
            counts = self._refused(item, prepared, error)
        t3 = time.monotonic()
        with self._written_lock:  # the main thread commits these (see _commit_written)
            self._written = merge_offsets(self._written, item.offsets)
        t4 = time.monotonic()
        self.total += counts
        metrics.BATCHES.inc()
        metrics.LANDED.inc(counts.accepted)
        metrics.DUPLICATES.inc(counts.duplicates)
        metrics.CONFLICTS.inc(counts.conflicts)
        metrics.REJECTED.inc(counts.rejected)
        metrics.BATCH_LATENCY.observe(time.monotonic() - item.started)
        if newest is not None and counts.accepted:
            self._newest = max(self._newest, metrics.epoch(newest))
            metrics.NEWEST_EVENT.set(self._newest)
        offsets = {f"{t}/{p}": o for (t, p), o in sorted(item.offsets.items())}
        fields = {"batch_id": prepared.batch_id, "messages": item.messages,
                  **counts.as_dict(), "wait_prepare_s": round(t1 - t0, 3),
                  "dlq_s": round(t2 - t1, 3), "write_s": round(t3 - t2, 3),
                  "age_s": round(t4 - item.started, 3), "offsets": offsets}  # fmt: skip
        if self._tracing:
            attributes = {"batch_id": prepared.batch_id, "messages": item.messages,
                          **counts.as_dict()}  # fmt: skip
            tracing.record_batch(item.links, item.started, attributes)
        if error is None:
            log.info("batch landed", extra=fields)
        else:
            metrics.REFUSED_BATCHES.inc()
            log.error(
                "the warehouse refused a batch for good: its messages went to the dead-letter"
                " topic (rule warehouse.refused), and the stream goes on",
                extra={**fields, "error": error},
            )

    def _refused(self, item: _Pending, prepared: PreparedBatch, reason: str) -> Counts:
        """Dead-letter a batch the warehouse refused for good: every message validation did
        not already reject goes to the dead-letter topic with the reason, then all of the
        batch's rejects to raw.rejected_events, where the warehouse still takes them (they
        would have been written with the batch). Every message counts as rejected."""
        _encode, topic, values, partitions, offsets = (
            self._handoff.take(item.inputs) if self._handoff else item.inputs.inline
        )
        already = {reject.origin for reject in prepared.rejects}
        refused = _refused_rejects(topic, values, partitions, offsets, reason, already)
        dlq = self._dlq
        assert dlq is not None
        self._retry(lambda: dlq.send(refused), "dead-letter produce")
        rejects = replace(prepared, n_events=0, has_repeats=False, months=set(), payload=None,
                          rejects=prepared.rejects + refused)  # fmt: skip
        try:
            self._retry(lambda: self._sink_write(rejects), "warehouse write of the rejects")
        except Exception as exc:
            if not failures.is_permanent(exc):
                raise
            log.error(
                "raw.rejected_events refused the batch's rejects too: they are in the"
                " dead-letter topic only",
                extra={"batch_id": prepared.batch_id, "error": failures.describe(exc)},
            )
        return Counts(rejected=len(rejects.rejects))

    def _sink_write(self, prepared: PreparedBatch) -> Counts:
        if self._sink is None:
            self._sink = backends.open_sink(self.warehouse)
        try:
            return self._sink.write(prepared)
        except self.transient:
            sink, self._sink = self._sink, None  # reconnect on the next attempt
            with contextlib.suppress(Exception):  # the connection is already broken
                sink.close()
            raise

    def _retry(self, action: Callable[[], T], what: str) -> T:
        """Run `action` until it succeeds, backing off (capped at 10 s) after each transient
        failure (failures.TRANSIENT); never skip it. Any other error is raised at once.

        Once a stop is requested, a failure abandons the batch instead (its
        offsets stay uncommitted, so the next run lands it).
        """
        backoff = Backoff()
        while True:
            try:
                return action()
            except self.transient as exc:
                if self.stopping:
                    raise Abandoned(what) from exc
                delay = backoff.next_delay()
                metrics.WAREHOUSE_RETRIES.inc()
                log.warning(
                    f"{what} failed, retrying",
                    extra={"error": str(exc).splitlines()[0] if str(exc) else repr(exc),
                           "retry_in_s": delay, "attempt": backoff.attempts},
                )  # fmt: skip
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and not self.stopping:
                    time.sleep(0.05)

    def _commit_written(self, asynchronous: bool) -> None:
        """Commit the offsets of every batch the writer has landed (main thread only)."""
        assert self._consumer is not None
        with self._written_lock:
            new = {k: o for k, o in self._written.items() if self._committed.get(k, -1) < o}
        if not new:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in sorted(new.items())]
        try:
            if asynchronous:
                self._consumer.commit(offsets=tps, asynchronous=True)
            else:
                self._consumer.commit(offsets=tps, asynchronous=False)
            self._committed = merge_offsets(self._committed, new)
        except KafkaException as exc:
            # The batches are in the warehouse; a replay of them counts as duplicates.
            log.warning("offset commit failed", extra={"error": str(exc)})

    def _update_lag(self) -> None:
        """Lag from the high watermarks cached with fetches (Tansu's ListOffsets is wrong)."""
        consumer = self._consumer
        assert consumer is not None
        try:
            assignment = consumer.assignment()
            for tp in consumer.position(assignment):
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0 and tp.offset >= 0:
                    metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - tp.offset))
        except KafkaException:
            pass

    # ------------------------------------------------------------------ rebalance

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._idle.assign([(tp.topic, tp.partition) for tp in partitions])
        log.info("partitions assigned", extra={"partitions": [tp.partition for tp in partitions]})

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Write what was polled from these partitions and commit it, or drop it uncommitted."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        log.info("partitions revoked", extra={"partitions": [tp.partition for tp in partitions]})
        if self._writer is None:  # shutting down: the writer is gone, commit nothing more
            self._open.cut()
            self._values, self._partitions, self._offsets = [], [], []
            self._idle.revoke(keys)
            return
        try:
            self._cut()
            self._drain()
        except Abandoned:
            self._writer_error = None  # dropped uncommitted: the next owner replays it
            log.warning("revoked with an unwritten batch: dropped, the next owner replays it")
        self._idle.revoke(keys)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost without a clean revoke: what is written stays (harmless),
        the offset commits fail and are logged, the next owner replays the rest."""
        log.warning("partitions lost")
        self._on_revoke(consumer, partitions)


def default_workers() -> int:
    return env_int("VALUEVERSE_INGEST_WORKERS", min(2, os.cpu_count() or 1), maximum=64)


def run_service(
    settings: KafkaSettings,
    warehouse: WarehouseConfig,
    until_idle: bool,
    metrics_port: int | None = None,
    **kwargs: Any,
) -> Counts:
    """`valueverse ingest run`: JSON logs, metrics endpoint, signals, the loop."""
    metrics.configure_json_logging()
    tracing.configure("valueverse-ingest")
    if metrics_port is not None:
        port = metrics.serve(metrics_port)
        log.info("metrics endpoint", extra={"port": port, "path": "/metrics"})
    service = IngestService(settings, warehouse, **kwargs)
    previous = {
        sig: signal.signal(sig, service.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        counts = service.run(until_idle=until_idle)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped", extra=counts.as_dict())
    return counts
