"""Start and stop a local Stripe-compatible server (`localstripe`) for the demo and tests.

Why a real server instead of mocks: the collection code is exercised through the official SDK,
HTTP and all, against a stateful API that creates customers and PaymentIntents, declines the
test cards and asks for authentication like Stripe does (ARCHITECTURE.md: real components).

localstripe keeps its state in one pickle file in the temp folder shared by every instance;
starting from scratch makes a new instance empty, and `reset()` empties a running one.

Its own command listens on every interface (`::`), which would put a payment API without a key
on the network; `python -m ingestion.demo.localstripe PORT` serves the same app on the
loopback interface only, and that is what is started here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingestion.demo.broker import free_port


@dataclass
class LocalStripe:
    """A running localstripe process; `base` is what STRIPE_API_BASE should be."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget every object (DELETE /_config/data)."""
        request = urllib.request.Request(f"{self.base}/_config/data", method="DELETE")
        # bandit: our own http:// URL
        with urllib.request.urlopen(request, timeout=10):  # nosec B310
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_localstripe(port: int | None = None, log: Path | None = None) -> LocalStripe:
    """Start localstripe, empty and on loopback only (see the module), and wait until it
    answers."""
    port = port or free_port()
    command = [sys.executable, "-m", "ingestion.demo.localstripe", str(port)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        command,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = LocalStripe(process, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"localstripe did not start on port {port}")


def serve_on_loopback(port: int) -> None:
    """localstripe's app, empty, on 127.0.0.1:`port` (its `start()` binds `::`)."""
    from aiohttp import web
    from localstripe.server import app  # type: ignore[import-untyped]

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    web.run_app(app, sock=sock, print=None)


if __name__ == "__main__":
    serve_on_loopback(int(sys.argv[1]))
