"""The usage API benchmark's load generator: HTTP clients in processes of their own.

Why processes apart from the bench and the server: a client that shares a process (and its
GIL) with what it measures slows it down and hides how fast it could go. Each load-generator
process runs threads, one keep-alive `http.client` connection each (the standard library:
nothing to install, and its cost per request is small next to the server's).

Two shapes of load:
- closed loop (`closed_loop`): every connection sends its share of the requests back to back,
  for throughput;
- open loop (`open_loop`): each request is due at a fixed time (`rate` per second in all), and
  its latency counts from that time, not from when a free connection sent it. A server that
  falls behind then shows its queue in the figures instead of slowing the client down with it
  (no coordinated omission).
Both return what they saw through a multiprocessing queue; the bench prints it.
"""

from __future__ import annotations

import http.client
import json
import queue
import resource
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

Request = tuple[str, str, bytes | None]  # method, path, body


class Connection:
    """One keep-alive connection. When the server has closed it while it was idle (uvicorn
    does after 5 s), the request is sent again once on a new connection, as HTTP clients do:
    the server never read it."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """(status, body) of the answer; status 0 when the connection failed."""
        reused = self.conn is not None
        try:
            return self._send(method, path, body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                return 0, b""
        except (OSError, http.client.HTTPException):
            return 0, b""
        try:
            return self._send(method, path, body)
        except (OSError, http.client.HTTPException):
            return 0, b""

    def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            self.conn.request(method, path, body, self.headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except BaseException:
            self.conn.close()
            self.conn = None
            raise


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def closed_loop(port: int, headers: dict[str, str], requests: Sequence[Request],
                connections: int, barrier: Any, results: Any) -> None:  # fmt: skip
    """Send `requests` over `connections` connections, each its share back to back; puts
    {start, end, statuses, accepted, rejected, cpu} on `results` (monotonic clock, which is
    the same in every process)."""
    statuses: Counter[int] = Counter()
    counted = {"accepted": 0, "rejected": 0}
    lock = threading.Lock()
    clients = [Connection(port, headers) for _ in range(connections)]
    for client in clients:  # connected before the clock starts
        client.send("GET", "/healthz", None)

    def run(client: Connection, share: Sequence[Request]) -> None:
        for method, path, body in share:
            status, answer = client.send(method, path, body)
            reply = json.loads(answer) if status == 202 else {}
            with lock:
                statuses[status] += 1
                counted["accepted"] += reply.get("accepted", 0)
                counted["rejected"] += len(reply.get("rejected", ()))

    threads = [threading.Thread(target=run, args=(client, requests[i::connections]))
               for i, client in enumerate(clients)]  # fmt: skip
    barrier.wait()
    cpu, start = _cpu(), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put({"start": start, "end": time.monotonic(), "statuses": dict(statuses),
                 **counted, "cpu": _cpu() - cpu})  # fmt: skip


def open_loop(port: int, headers: dict[str, str], requests: Sequence[Request], rate: float,
              connections: int, barrier: Any, results: Any) -> None:  # fmt: skip
    """Offer `requests` at `rate` per second (request i is due at start + i / rate) through
    `connections` connections; puts {start, samples: [(due - start, latency s, status)], cpu}
    on `results`."""
    due_requests: queue.SimpleQueue[tuple[float, Request] | None] = queue.SimpleQueue()
    samples: list[tuple[float, float, int]] = []
    clients = [Connection(port, headers) for _ in range(connections)]
    for client in clients:
        client.send("GET", "/healthz", None)

    def run(client: Connection) -> None:
        while (item := due_requests.get()) is not None:
            due, (method, path, body) = item
            status, _answer = client.send(method, path, body)
            samples.append((due, time.monotonic() - due, status))  # list.append is atomic

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    barrier.wait()
    cpu, start = _cpu(), time.monotonic()
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        due_requests.put((due, request))
    for _ in threads:
        due_requests.put(None)
    for thread in threads:
        thread.join()
    samples = [(due - start, latency, status) for due, latency, status in samples]
    results.put({"start": start, "samples": samples, "cpu": _cpu() - cpu})
