"""Local webhook receivers: the demo's endpoint, and the one server the notification tests and
the delivery benchmark answer with.

`local_receiver` is a threaded http.server on 127.0.0.1 that hands each POST (lower-cased
headers, body) to a callback and answers with the status it returns. The demo's receiver checks
every delivery's signature the way a customer's receiver would
(ingestion/notifications/verify.py) and counts the distinct ids it accepted."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ingestion.notifications.settings import SIGNING_KEY_ENV
from ingestion.notifications.verify import WebhookVerificationError, verify

MAX_BODY_BYTES = 1 << 20

Take = Callable[[dict[str, str], bytes], int]


@contextmanager
def local_receiver(take: Take, path: str = "/hooks") -> Iterator[str]:
    """A receiver on a free port of 127.0.0.1 for as long as the block runs; yields its URL.
    Each POST's body (up to MAX_BODY_BYTES) and headers go to `take`; its result is the
    answer's status."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = min(int(self.headers.get("content-length", "0")), MAX_BODY_BYTES)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = take(headers, self.rfile.read(length))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


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
    with local_receiver(state.take, "/valueverse") as url:
        state.url = url
        yield state
