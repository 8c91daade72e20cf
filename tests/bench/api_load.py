"""The usage API benchmark's load generator: HTTP clients in processes of their own.

Why processes apart from the bench and the server: a client that shares a process (and its
GIL) with what it measures slows it down and hides how fast it could go. Each load-generator
process runs threads, one keep-alive connection each.

Why raw HTTP/1.1 on a socket and not `http.client`: on two cores the load generator takes
its CPU from the server it measures, and `http.client` (its header parsing above all) cost
~90 µs a request against ~15 µs for writing the request and reading a Content-Length answer
(measured against a bare uvicorn app). The server's answers always carry Content-Length.

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

import json
import queue
import re
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

Request = tuple[str, str, bytes | None]  # method, path, body
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class Connection:
    """One keep-alive HTTP/1.1 connection. When the server has closed it while it was idle
    (uvicorn does after 5 s), the request is sent again once on a new connection, as HTTP
    clients do: the server never read it."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.head = "".join(
            f"{name}: {value}\r\n"
            for name, value in {"Host": f"127.0.0.1:{port}", **headers}.items()
        )
        self.sock: socket.socket | None = None
        self.buffer = b""

    def send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """(status, body) of the answer; status 0 when the connection failed."""
        reused = self.sock is not None
        try:
            return self._send(method, path, body or b"")
        except (ConnectionResetError, BrokenPipeError, EOFError):
            if not reused:
                return 0, b""
        except OSError:
            return 0, b""
        try:
            return self._send(method, path, body or b"")
        except (OSError, EOFError):
            return 0, b""

    def _send(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        try:
            self.sock.sendall(f"{method} {path} HTTP/1.1\r\n{self.head}"
                              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
            while b"\r\n\r\n" not in self.buffer:
                self.buffer += self._receive()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            while len(rest) < length:
                rest += self._receive()
            self.buffer = rest[length:]
            return int(head[9:12]), rest[:length]
        except BaseException:
            self.sock.close()
            self.sock = None
            raise

    def _receive(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(1 << 16)
        if not data:
            raise EOFError("the server closed the connection")
        return data


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
