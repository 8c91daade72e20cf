"""The demo's notification receiver: a local webhook endpoint (a threaded http.server on
127.0.0.1) that checks every delivery's signature the way a customer's receiver would
(ingestion/notifications/verify.py) and counts the distinct ids it accepted."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ingestion.notifications.settings import SIGNING_KEY_ENV
from ingestion.notifications.verify import WebhookVerificationError, verify


@dataclass
class DemoReceiver:
    url: str = ""
    secret: str = ""
    ids: set[str] = field(default_factory=set)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            try:
                self.ids.add(verify(self.secret, headers, body))
            except WebhookVerificationError:
                self.refused += 1
                return 400
        return 204


def ensure_demo_signing_key() -> bool:
    """A random master key for this process when the environment has none (the demo's
    endpoint lives as long as the demo); True when one was made."""
    if os.environ.get(SIGNING_KEY_ENV):
        return False
    os.environ[SIGNING_KEY_ENV] = secrets.token_hex(32)
    return True


@contextmanager
def demo_receiver() -> Iterator[DemoReceiver]:
    state = DemoReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = min(int(self.headers.get("content-length", "0")), 1 << 20)
            status = state.take(dict(self.headers.items()), self.rfile.read(length))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/valueverse"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
