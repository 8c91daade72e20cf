"""Shared helpers for the payment tests: a real localstripe server, finalized invoices
written straight into the store (cheap), and what Stripe holds for an invoice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import stripe

from ingestion.billing.invoice_store import ensure_store
from ingestion.demo.localstripe import LocalStripe, start_localstripe
from ingestion.payments.stripe_gateway import StripeGateway
from ingestion.warehouse import WarehouseConfig, connect_duckdb, connect_postgres

TEST_KEY = "sk_test_valueverse_payments"


@pytest.fixture(scope="session", name="localstripe_server")
def localstripe_server_fixture() -> Iterator[LocalStripe]:
    """One localstripe process for the session (import this fixture into a test module)."""
    server = start_localstripe()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="stripe_server")
def stripe_server_fixture(localstripe_server: LocalStripe) -> LocalStripe:
    """The session's server, emptied before each test (its state is shared by all users)."""
    localstripe_server.reset()
    return localstripe_server


def gateway_for(server: LocalStripe, timeout: float = 10) -> StripeGateway:
    return StripeGateway(TEST_KEY, server.base, timeout=timeout)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def add_finalized_invoice(
    config: WarehouseConfig,
    customer_id: str,
    total: str,
    currency: str = "USD",
    exponent: int = 2,
    period_start: date = date(2026, 1, 1),
) -> str:
    """Write one finalized invoice directly into billing.finalized_invoices; its id."""
    ensure_store(config)
    subscription = unique("sub")
    invoice_id = f"{subscription}/{period_start.isoformat()}"
    mark = "?" if config.kind == "duckdb" else "%s"
    seq_sql = "SELECT coalesce(max(sequence_number), 0) + 1 FROM billing.finalized_invoices"
    amount = Decimal(total)
    row: dict[str, Any] = {
        "invoice_id": invoice_id, "subscription_id": subscription, "customer_id": customer_id,
        "period_start": period_start, "period_end": date(2026, 2, 1), "subtotal": amount,
        "discount_amount": Decimal(0), "adjustment_amount": Decimal(0), "total": amount,
        "currency": currency, "currency_exponent": exponent, "series": "VV",
        "finalized_as_of": date(2026, 2, 4),
        "finalized_at": datetime(2026, 2, 4, 6, tzinfo=UTC).replace(tzinfo=None),
    }  # fmt: skip
    con: Any = connect_duckdb(config) if config.kind == "duckdb" else connect_postgres(config)
    try:
        seq = int(con.execute(seq_sql).fetchone()[0])
        row["sequence_number"] = seq
        row["invoice_number"] = f"VV-{seq:06d}"
        columns = ", ".join(row)
        marks = ", ".join(mark for _ in row)
        con.execute(
            f"INSERT INTO billing.finalized_invoices ({columns}) VALUES ({marks})",
            list(row.values()),
        )
        con.commit()
    finally:
        con.close()
    return invoice_id


def intents_for(server: LocalStripe, invoice_id: str) -> list[dict[str, Any]]:
    """Every PaymentIntent the server holds for an invoice (by metadata), oldest first."""
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": server.base})
    listed = client.v1.payment_intents.list(params={"limit": 100})
    return [
        pi.to_dict()
        for pi in listed.auto_paging_iter()
        if (pi.to_dict().get("metadata") or {}).get("invoice_id") == invoice_id
    ]


def rows(config: WarehouseConfig, sql: str) -> list[tuple[Any, ...]]:
    con: Any = connect_duckdb(config) if config.kind == "duckdb" else connect_postgres(config, True)
    try:
        return [tuple(r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


class LossyProxy:
    """A TCP proxy in front of localstripe that forwards every request, but for the creation of
    a PaymentIntent closes the connection without passing Stripe's answer back: the charge
    happened, the caller never hears of it (a lost response / timeout after the fact)."""

    def __init__(self, upstream_port: int) -> None:
        import socket
        import threading

        self.upstream_port = upstream_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.dropped = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._handle(conn)

    def _handle(self, conn: Any) -> None:
        import http.client

        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(headers.get("Content-Length", headers.get("content-length", "0")))
        while len(body) < length:
            body += conn.recv(65536)
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=10)
        upstream.request(method, path, body=body or None, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        upstream.close()
        if method == "POST" and path.split("?")[0] == "/v1/payment_intents":
            self.dropped += 1
            return  # Stripe charged; the answer is lost
        reply = (
            f"HTTP/1.1 {response.status} {response.reason}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + payload
        conn.sendall(reply)
