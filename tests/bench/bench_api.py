"""Benchmark: the usage API (`valueverse api serve`) next to a bare producer to the same broker.

Run by `make bench`. Prints figures and ratios; asserts nothing. One run, on the local Tansu
broker (unless KAFKA_BOOTSTRAP_SERVERS is set), the rate limits in Redis as replicas share
them (`--redis-url ''`: in the process), a key with limits far above the load, and the load
generator in processes of its own (api_load.py). Steps 2-4 run once per `--workers` value (a
server with 1, then one with 2 processes by default):
1. bare producer: the slice's events (the first `--events` lines of the sample) produced by one
   confluent-kafka producer (idempotent, acks=all, linger as the API's) to a fresh topic,
   keyed by customer like the API, until the last acknowledgement: the ceiling of any path
   to the broker (keys are read before the clock starts);
2. batched POST /v1/events: the same events as NDJSON batches of 100 and of 1,000, all
   connections sending back to back, timed from the first request to the last answer (202
   once the broker acknowledged); events/s and the ratio to the bare producer (goal: batched
   >= 0.25 x);
3. latency: single-event POSTs offered at `--rate` requests/s (1,000) in an open loop: each
   request is due at a fixed time and its latency counts from then (no coordinated omission);
   p50/p95/p99 after a warm-up (goal: p95 < 50 ms);
4. reads: GET /v1/customers/{id}/usage over random customers of the demo's warehouse, open loop
   at `--read-rate` requests/s; p50/p95/p99 (goal: p95 < 100 ms). The server reads a copy of
   that warehouse (the bench writes its key there, never into the demo's); without `make
   demo`'s warehouse the POSTs read keys from an empty one and this step says to run it first.
Beside each step: the CPU the server, the broker and the load generator used.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import redis
from api_load import Request, closed_loop, open_loop
from bench_landing import proc_cpu

from ingestion.api.keys import create_key
from ingestion.demo.broker import start_broker
from ingestion.demo.through_api import api_env, api_server
from ingestion.landing import kafka_clients
from ingestion.landing.files import iter_lines
from ingestion.landing.kafka_clients import KafkaSettings, ensure_topics
from ingestion.landing.producer import key_of
from ingestion.warehouse import connect, resolve

BARE = "bare producer (idempotent, acks=all)"
BATCHES = (100, 1000)  # events per NDJSON request
WARM_UP_S = 3.0  # of an open-loop run, not in its figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events-file", type=Path,
                        default=Path(".data/sample-1000000-42/events.jsonl"))  # fmt: skip
    parser.add_argument("--events", type=int, default=200_000, help="lines of the file to send")
    parser.add_argument("--warehouse", type=Path, default=Path(".data/valueverse.duckdb"),
                        help="the demo's DuckDB warehouse (for the reads)")  # fmt: skip
    parser.add_argument("--workers", default="1,2",
                        help="comma-separated `api serve --workers` values")  # fmt: skip
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8, help="in all, for throughput")
    parser.add_argument("--rate", type=float, default=1000.0, help="single-event POSTs per s")
    parser.add_argument("--latency-connections", type=int, default=64, help="in all")
    parser.add_argument("--seconds", type=float, default=20.0, help="of each open-loop run")
    parser.add_argument("--read-rate", type=float, default=50.0, help="GETs per second")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    lines = [line for _number, line in islice(iter_lines(args.events_file), args.events)]
    redis_url = _answering(args.redis_url)
    limits = f"in Redis ({redis_url})" if redis_url else "in the server process"
    print(f"usage API: {len(lines):,} events (the first lines of {args.events_file}), "
          f"rate limits {limits}")  # fmt: skip
    print(f"load generator: {args.load_processes} processes (api_load.py, HTTP/1.1 keep-alive "
          f"sockets), {args.connections} connections in all for throughput, "
          f"{args.latency_connections} for the open-loop runs", flush=True)  # fmt: skip
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = start_broker()
        bootstrap = broker.bootstrap
    broker_pid = broker.process.pid if broker else None
    tag = uuid.uuid4().hex[:6]
    settings = KafkaSettings.from_env(bootstrap, topic=f"bench-api-{tag}",
                                      dlq_topic=f"bench-api-{tag}-dlq")  # fmt: skip
    rates: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
            warehouse, reads = _warehouse(args.warehouse, Path(scratch))
            bare = KafkaSettings.from_env(bootstrap, topic=f"bench-bare-{tag}")
            with Cpu("producer (this process)", os.getpid(), broker_pid) as cpu:
                seconds = bare_produce(bare, lines)
            report(BARE, len(lines), seconds, rates, cpu)
            _, token = create_key(warehouse, "bench", ["events:write", "usage:read"],
                                  requests_per_second=10_000_000,
                                  events_per_second=1_000_000_000)  # fmt: skip
            env = {**api_env(warehouse, settings), "VALUEVERSE_REDIS_URL": redis_url or ""}
            for workers in (int(w) for w in args.workers.split(",")):
                print(f"-- valueverse api serve --workers {workers}", flush=True)
                with api_server(env, Path(scratch) / "api.log", workers) as server:
                    for size in BATCHES:
                        name = f"API ({workers}w), NDJSON batches of {size:,}"
                        seconds, counted, cpu = post_batches(server, token, lines, size, args,
                                                             broker_pid)  # fmt: skip
                        report(name, counted, seconds, rates, cpu)
                    single_event_latency(server, token, lines, args, broker_pid)
                    if reads:
                        read_latency(server, token, reads, args, broker_pid)
            if not reads:
                print("GET /v1/customers/{id}/usage: run make demo first (it is measured on "
                      "the demo's warehouse)")  # fmt: skip
    finally:
        if broker:
            broker.stop()
    for name, rate in rates.items():
        if name != BARE:
            print(f"{name:36s} {rate / rates[BARE]:.2f} x the bare producer (goal >= 0.25)")
    return 0


def _answering(url: str) -> str | None:
    """The Redis URL when Redis answers, else None (the limits stay in the server process)."""
    if url:
        try:
            redis.Redis.from_url(url, socket_timeout=2).ping()
            return url
        except redis.RedisError as exc:
            print(f"Redis at {url} does not answer ({type(exc).__name__})")
    return None


def _warehouse(demo: Path, scratch: Path) -> tuple[Any, list[str]]:
    """The server's warehouse: a copy of the demo's (and its customers, for the reads), else an
    empty DuckDB file that holds only the key."""
    path = scratch / "warehouse.duckdb"
    if not demo.exists():
        return resolve(f"duckdb://{path}"), []
    shutil.copyfile(demo, path)
    config = resolve(f"duckdb://{path}")
    with connect(config, read_only=True) as db:
        customers = [row[0] for row in db.rows(
            "SELECT DISTINCT customer_id FROM marts.rated_usage ORDER BY 1")]  # fmt: skip
    return config, customers


def bare_produce(settings: KafkaSettings, lines: Sequence[bytes]) -> float:
    """Seconds to produce every line and have every acknowledgement."""
    ensure_topics(settings, [settings.topic])
    messages = [(line, key_of(line)) for line in lines]
    producer = kafka_clients.producer(settings, {
        "enable.idempotence": True, "acks": "all", "linger.ms": 2,
        "queue.buffering.max.messages": 500_000,
    })  # fmt: skip
    failed: list[Any] = []

    def delivered(err: Any, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    start = time.perf_counter()
    for value, key in messages:
        while True:
            try:
                producer.produce(settings.topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(120)
    seconds = time.perf_counter() - start
    if left or failed:
        print(f"bare producer: {left} undelivered, {len(failed)} failed: {failed[:3]}")
    return seconds


def post_batches(server: Any, token: str, lines: Sequence[bytes], size: int,
                 args: argparse.Namespace, broker_pid: int | None,
                 ) -> tuple[float, int, Cpu]:  # fmt: skip
    """(seconds, events answered, CPU) for the lines posted as NDJSON batches of `size` (not
    JSON arrays: the sample's lines that are not JSON would make a whole array malformed)."""
    requests: list[Request] = [
        ("POST", "/v1/events", b"\n".join(lines[at : at + size]) + b"\n")
        for at in range(0, len(lines), size)
    ]
    headers = _headers(token, "application/x-ndjson")
    per_process = _split(args.connections, args.load_processes)
    jobs = [(closed_loop, (server.port, headers, requests[p :: args.load_processes], n))
            for p, n in enumerate(per_process)]  # fmt: skip
    with Cpu("server", server.pid, broker_pid) as cpu:
        results = run_load(jobs)
    cpu.clients = sum(r["cpu"] for r in results)
    statuses = _merge(r["statuses"] for r in results)
    if set(statuses) != {202}:
        print(f"  answers other than 202: {statuses}")
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return seconds, sum(r["accepted"] + r["rejected"] for r in results), cpu


def single_event_latency(server: Any, token: str, lines: Sequence[bytes],
                         args: argparse.Namespace, broker_pid: int | None) -> None:  # fmt: skip
    count = int(args.rate * (args.seconds + WARM_UP_S))
    bodies = [lines[i % len(lines)] for i in range(count)]
    requests: list[Request] = [("POST", "/v1/events", body) for body in bodies]
    name = f"single-event POST at {args.rate:,.0f}/s"
    open_loop_run(name, server, _headers(token, "application/json"), requests, args.rate,
                  args, broker_pid, "p95 < 50 ms")  # fmt: skip


def read_latency(server: Any, token: str, customers: list[str], args: argparse.Namespace,
                 broker_pid: int | None) -> None:  # fmt: skip
    pick = random.Random(42)  # nosec B311 (customers to read, not a secret)
    count = int(args.read_rate * (args.seconds + WARM_UP_S))
    requests: list[Request] = [
        ("GET", f"/v1/customers/{pick.choice(customers)}/usage", None) for _ in range(count)
    ]
    name = f"GET usage at {args.read_rate:,.0f}/s ({len(customers):,} customers)"
    open_loop_run(name, server, _headers(token, "application/json"), requests, args.read_rate,
                  args, broker_pid, "p95 < 100 ms")  # fmt: skip


def open_loop_run(name: str, server: Any, headers: dict[str, str], requests: list[Request],
                  rate: float, args: argparse.Namespace, broker_pid: int | None,
                  goal: str) -> None:  # fmt: skip
    processes = args.load_processes
    per_process = _split(args.latency_connections, processes)
    jobs = [(open_loop, (server.port, headers, requests[p::processes], rate / processes, n))
            for p, n in enumerate(per_process)]  # fmt: skip
    with Cpu("server", server.pid, broker_pid) as cpu:
        results = run_load(jobs)
    cpu.clients = sum(r["cpu"] for r in results)
    samples = [s for r in results for s in r["samples"] if s[0] >= WARM_UP_S]
    ok = sorted(latency * 1000 for _due, latency, status in samples if 200 <= status < 300)
    # a sample line that is not JSON, sent alone as application/json, is a malformed body: 400
    others = _merge([Counter(status for _, _, status in samples if not 200 <= status < 300)])
    if len(ok) < 100:
        print(f"{name}: only {len(ok)} answered requests, no percentiles")
        return
    # answered per second: below the offered rate when the server cannot keep up
    answered = len(samples) / (max(due + latency for due, latency, _ in samples) - WARM_UP_S)
    p = statistics.quantiles(ok, n=100, method="inclusive")
    print(f"{name:36s} {len(samples):>8,d} requests after {WARM_UP_S:g} s warm-up, "
          f"{answered:,.0f}/s answered, not 2xx {others or 0}: p50 {p[49]:.1f} ms, "
          f"p95 {p[94]:.1f} ms (goal {goal}), p99 {p[98]:.1f} ms, max {ok[-1]:.1f} ms",
          flush=True)  # fmt: skip
    print(f"{'':36s} CPU {cpu.report()}")


def run_load(jobs: list[tuple[Callable[..., None], tuple]]) -> list[dict]:
    """Run each (function, args) in a load-generator process of its own; all start together
    (a barrier) and this returns what they put on the results queue."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs) + 1)
    results = context.Queue()
    processes = [context.Process(target=target, args=(*job_args, barrier, results))
                 for target, job_args in jobs]  # fmt: skip
    for process in processes:
        process.start()
    barrier.wait(timeout=300)
    got = [results.get(timeout=900) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return got


class Cpu:
    """CPU seconds a process tree (the server, or this process) and the broker used within a
    `with` block; the load generator's is added by the caller (`clients`)."""

    def __init__(self, name: str, pid: int, broker_pid: int | None) -> None:
        self.name, self.pid, self.broker_pid = name, pid, broker_pid
        self.clients: float | None = None

    def __enter__(self) -> Cpu:
        self.start = (tree_cpu(self.pid), self._broker())
        return self

    def __exit__(self, *exc: object) -> None:
        self.used = (tree_cpu(self.pid) - self.start[0], self._broker() - self.start[1])

    def _broker(self) -> float:
        return proc_cpu(self.broker_pid) if self.broker_pid else float("nan")

    def report(self) -> str:
        text = f"{self.name} {self.used[0]:.1f} s, broker {self.used[1]:.1f} s"
        if self.clients is not None:
            text += f", load generator {self.clients:.1f} s"
        return text


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living descendants (uvicorn's workers)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += proc_cpu(current, missing=0.0)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                stack += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return total


def report(name: str, n: int, seconds: float, rates: dict[str, float], cpu: Cpu) -> None:
    rates[name] = n / seconds
    print(f"{name:36s} {n:>8,d} events {seconds:7.2f} s {n / seconds:>10,.0f} /s", flush=True)
    print(f"{'':36s} CPU {cpu.report()}")


def _headers(token: str, content_type: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


def _split(total: int, parts: int) -> list[int]:
    """`total` connections over `parts` processes, as evenly as can be (each at least 1)."""
    return [max(1, total // parts + (1 if p < total % parts else 0)) for p in range(parts)]


def _merge(counters: Any) -> dict[int, int]:
    merged: dict[int, int] = {}
    for counter in counters:
        for status, n in counter.items():
            merged[status] = merged.get(status, 0) + n
    return merged


if __name__ == "__main__":
    sys.exit(main())
