"""Benchmark: the usage API's CPU per POST /v1/events, in process, on a loaded machine.

Why in process: on a machine whose cores are shared (the broker, the load generator, other
sessions), wall-clock rates swing by 2x from run to run, while the server's CPU per request is
what decides how many requests it can take. Here the app (`create_app`) is called as ASGI by
this process, with a producer that acknowledges at once, so uvicorn, the broker and the load
generator are left out and what is measured is the app's own work: the process's CPU seconds
(every thread: the key reads and reject writes that run in the thread pool count) per request.

`--concurrency` requests are in flight at once (the rate limits' round trips to Redis overlap,
as under load). `--warehouse empty` serves keys and records rejects in a new, empty DuckDB file;
a path serves them from a copy of that warehouse. The figures are printed on stdout; stderr
gets the request log lines (send it to /dev/null). With `--profile FILE` one more round runs
under cProfile and its statistics go to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import shutil
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from ingestion.api.app import create_app
from ingestion.api.keys import KeyVerifier, create_key
from ingestion.api.ratelimit import RateLimiter
from ingestion.api.rejects import RejectWriter
from ingestion.api.services import Services
from ingestion.api.settings import ApiSettings
from ingestion.landing.files import iter_lines
from ingestion.landing.metrics import configure_json_logging
from ingestion.landing.sinks import backends
from ingestion.warehouse import resolve


class AckingProducer:
    """Stands for the broker: every message is acknowledged at once."""

    async def send(self, messages: Any, timeout: float) -> None:
        return None

    def ready(self, timeout: float = 2.0) -> bool:
        return True

    def close(self, timeout: float = 10.0) -> int:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events-file", type=Path, required=True)
    parser.add_argument("--size", type=int, default=100, help="events per request (1: JSON)")
    parser.add_argument("--requests", type=int, default=500, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warehouse", default="empty", help="'empty' or a DuckDB file to copy")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                        help="'' for the limits in the process")  # fmt: skip
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    configure_json_logging()  # the server's log line per request, on stderr as it does
    with tempfile.TemporaryDirectory(prefix="bench-api-cpu-") as scratch:
        path = Path(scratch) / "warehouse.duckdb"
        if args.warehouse != "empty":
            shutil.copyfile(args.warehouse, path)
        config = resolve(f"duckdb://{path}")
        _, token = create_key(config, "bench", ["events:write"], requests_per_second=10**9,
                              events_per_second=2 * 10**9)  # fmt: skip
        with backends.open_sink(config):  # the rejects' tables, as the server makes them
            pass
        bodies = _bodies(args.events_file, args.size, args.requests)
        settings = ApiSettings(redis_url=args.redis_url or None, max_events=1000)
        services = Services(settings=settings, warehouse=config, keys=KeyVerifier(config),
                            limiter=RateLimiter(settings), producer=AckingProducer(),  # type: ignore[arg-type]
                            rejects=RejectWriter(config),
                            topic="t", dlq_topic="t-dlq", webhook_secret="")  # fmt: skip
        kind = "application/json" if args.size == 1 else "application/x-ndjson"
        rounds = asyncio.run(_run(services, token, kind, bodies, args))
    best, worst = min(rounds), max(rounds)
    print(
        f"{args.size:,}-event requests, warehouse {args.warehouse}, "
        f"{args.requests} requests x {args.rounds} rounds: CPU per request "
        f"{best:,.0f}-{worst:,.0f} us (least-most), per event {best / args.size:,.1f} us"
    )
    return 0


def _bodies(events_file: Path, size: int, count: int) -> list[bytes]:
    lines = [line for _n, line in islice(iter_lines(events_file), size * count)]
    if size == 1:
        return lines
    return [b"\n".join(lines[at : at + size]) + b"\n" for at in range(0, len(lines), size)]


async def _run(services: Services, token: str, kind: str, bodies: list[bytes],
               args: argparse.Namespace) -> list[float]:  # fmt: skip
    app = create_app(lambda: services)
    headers = [(b"authorization", f"Bearer {token}".encode()),
               (b"content-type", kind.encode())]  # fmt: skip
    rounds = []
    async with app.router.lifespan_context(app):
        await _round(app, headers, bodies[: args.concurrency * 4], args.concurrency)  # warm-up
        for _ in range(args.rounds):
            started = time.process_time()
            await _round(app, headers, bodies, args.concurrency)
            rounds.append((time.process_time() - started) / len(bodies) * 1e6)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            await _round(app, headers, bodies, args.concurrency)
            profile.disable()
            profile.dump_stats(args.profile)
    return rounds


async def _round(app: Any, headers: list, bodies: list[bytes], concurrency: int) -> None:
    queue = list(reversed(bodies))

    async def worker() -> None:
        while queue:
            status = await _post(app, headers, queue.pop())
            if status != 202:
                raise SystemExit(f"POST /v1/events answered {status}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _post(app: Any, headers: list, body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/events", "raw_path": b"/v1/events", "query_string": b"",
        "root_path": "", "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080),
    }  # fmt: skip
    sent = False
    status = 0

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


if __name__ == "__main__":
    sys.exit(main())
