"""Benchmark: Kafka -> PostgreSQL end to end vs raw binary COPY vs a bare consumer.

Run by `make bench`. Prints figures and ratios; asserts nothing. One run:
1. produces the generated JSONL file (1M events by default) to a fresh topic
   (the local Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set);
2. raw consume: a bare confluent-kafka consumer reads every message of the
   topic (no validation, no warehouse) — the ceiling the broker allows — and
   prints the CPU it and the broker used (the least any consumer costs);
3. end to end: the `ingest run --until-idle` logic (IngestService) from the
   same topic into a fresh PostgreSQL database with validation, dedup,
   conflicts, dead letters and offset commits, once per `--workers` value
   (0 = validate inline in the polling process, N = N worker processes);
   timed like the bare consumer, from the first message received to the last
   offset commit (the start-up and consumer-group join before it, ~1 s on
   Tansu, are printed beside it);
4. baselines: binary COPY of the same valid rows, by an ordinary client
   (psycopg write_row, bench_landing.client_copy) and server-only (rows encoded
   before the clock, bench_landing.raw_copy).
Goal: end to end >= 0.5 x the client binary COPY and never below 1M events/minute;
the server-only ratio is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
import uuid
from pathlib import Path

from bench_landing import (
    ADMIN_URL,
    CLIENT_COPY,
    SERVER_COPY,
    client_copy,
    drop_db,
    proc_cpu,
    raw_copy,
    scratch_db,
)
from confluent_kafka import Consumer, KafkaError

from ingestion.demo.broker import start_broker
from ingestion.demo.generator import generate
from ingestion.landing import metrics
from ingestion.landing.batching import BatchPolicy
from ingestion.landing.consumer import FETCH_CONFIG, IngestService
from ingestion.landing.kafka_clients import KafkaSettings
from ingestion.landing.producer import produce_file
from ingestion.warehouse import resolve

FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}


def raw_consume(settings: KafkaSettings, broker_pid: int | None) -> tuple[float, int]:
    """A bare consumer reads every message of the topic, taking each value out (the
    least any consumer does); prints the CPU it and the broker used."""
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap, "group.id": "raw-" + uuid.uuid4().hex[:6],
         "auto.offset.reset": "earliest", "enable.auto.commit": False,
         "enable.partition.eof": True, **FETCH_CONFIG, **FAST_GROUP}
    )  # fmt: skip
    consumer.subscribe([settings.topic])
    n, at_end, first, cpu = 0, set(), None, None
    while True:
        for msg in consumer.consume(10_000, 0.5):
            err = msg.error()
            if err is None:
                if first is None:
                    first, cpu = time.perf_counter(), CpuSplit(broker_pid, server=False)
                n += 1
                msg.value()
                at_end.discard(msg.partition())
            elif err.code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
        if first and len(at_end) == settings.partitions:
            break
    elapsed = time.perf_counter() - (first or 0)
    if cpu is not None:
        print(f"{'':32s} where the CPU went: {cpu.report()}")
    consumer.close()
    return elapsed, n


def end_to_end(
    settings: KafkaSettings, url: str, workers: int, verbose: bool, broker_pid: int | None
) -> tuple[float, int, dict]:
    group = f"bench-{workers}-{uuid.uuid4().hex[:6]}"
    if verbose:
        metrics.configure_json_logging()
    service = IngestService(
        KafkaSettings.from_env(settings.bootstrap, topic=settings.topic, group=group,
                               dlq_topic=settings.dlq_topic, extra=FAST_GROUP),
        resolve(url), policy=BatchPolicy(max_messages=50_000), workers=workers,
    )  # fmt: skip
    cpu = CpuSplit(broker_pid)
    start = time.perf_counter()
    counts = service.run(until_idle=True)
    end = time.perf_counter()
    first = service.first_message_at or start
    print(
        f"{'':32s} start-up and group join {first - start:.2f} s (not in the rate), "
        f"first message to last commit {end - first:.2f} s"
    )
    print(f"{'':32s} where the CPU went (whole run): {cpu.report()}")
    return end - first, counts.total, counts.as_dict()


class CpuSplit:
    """CPU seconds since creation: this process (polling, librdkafka and writer
    threads), its finished worker processes, the PostgreSQL server processes and
    the local broker. PostgreSQL backends are sampled every 50 ms, because the
    service's own backend exits before the report."""

    def __init__(self, broker_pid: int | None, server: bool = True) -> None:
        self.broker_pid = broker_pid
        self.server = server
        self._server_start = {pid: _proc_cpu(pid) for pid in _pids_named("postgres") if server}
        self._server_last = dict(self._server_start)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        self.start = self._read()

    def _sample(self) -> None:
        while self.server and not self._stop.wait(0.05):
            for pid in _pids_named("postgres"):
                self._server_start.setdefault(pid, 0.0)  # started meanwhile: all its CPU
                self._server_last[pid] = max(self._server_last.get(pid, 0.0), _proc_cpu(pid))

    def _read(self) -> tuple[float, float, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        broker = _proc_cpu(self.broker_pid) if self.broker_pid else float("nan")
        return (me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime, broker)

    def report(self) -> str:
        self._stop.set()
        self._sampler.join()
        now = self._read()
        main, workers, broker = (b - a for a, b in zip(self.start, now, strict=True))
        if not self.server:
            return f"consumer process {main:.2f} s, broker {broker:.2f} s"
        server = sum(self._server_last[p] - self._server_start[p] for p in self._server_last)
        return (f"consumer process {main:.2f} s, workers {workers:.2f} s, "
                f"PostgreSQL {server:.2f} s, broker {broker:.2f} s")  # fmt: skip


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _proc_cpu(pid: int) -> float:
    return proc_cpu(pid, missing=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events-file", type=Path, help="generated JSONL (default: generate)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--workers", default="0,2", help="comma-separated worker counts")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--verbose", action="store_true", help="JSON logs of every batch")
    args = parser.parse_args()
    path = args.events_file
    if path is None:
        path = Path(f".data/sample-{args.events}-42/events.jsonl")
        if not path.exists():
            generate(path.parent, events=args.events, seed=42)
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = start_broker()
        bootstrap = broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    settings = KafkaSettings.from_env(
        bootstrap, topic=f"bench-{tag}", dlq_topic=f"bench-{tag}-dlq",
        partitions=args.partitions,
    )  # fmt: skip
    rates: dict[str, float] = {}
    try:
        start = time.perf_counter()
        sent = produce_file(settings, path, timeout=600)
        report("produce (events produce)", sent, time.perf_counter() - start, rates)
        seconds, n = raw_consume(settings, broker.process.pid if broker else None)
        report("raw consume (bare consumer)", n, seconds, rates)
        for workers in (int(w) for w in args.workers.split(",")):
            db, url = scratch_db(args.admin_url)
            try:
                broker_pid = broker.process.pid if broker else None
                seconds, n, counts = end_to_end(settings, url, workers, args.verbose, broker_pid)
            finally:
                drop_db(args.admin_url, db)
            report(f"Kafka->PostgreSQL, {workers} workers", n, seconds, rates)
            print(f"{'':32s} {counts}")
        for name, baseline in ((CLIENT_COPY, client_copy), (SERVER_COPY, raw_copy)):
            db, url = scratch_db(args.admin_url)
            try:
                seconds, n = baseline(url, path)
            finally:
                drop_db(args.admin_url, db)
            report(name, n, seconds, rates)
    finally:
        if broker:
            broker.stop()
    copy, server = rates[CLIENT_COPY], rates[SERVER_COPY]
    consume = rates["raw consume (bare consumer)"]
    for name, rate in rates.items():
        if name.startswith("Kafka->"):
            print(
                f"{name:32s} {rate / copy:.2f} x client COPY (goal >= 0.50), "
                f"{rate / server:.2f} x server-only COPY, "
                f"{rate / consume:.2f} x raw consume, {rate * 60 / 1e6:.2f}M events/min "
                "(goal >= 1M)"
            )
    return 0


def report(name: str, n: int, seconds: float, rates: dict[str, float]) -> None:
    rates[name] = n / seconds
    print(f"{name:32s} {n:>10,d} msgs {seconds:8.2f} s {n / seconds:>12,.0f} /s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
