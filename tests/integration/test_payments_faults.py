"""Crash safety and an unreliable Stripe, against a real localstripe server.

- Stripe unreachable (closed port) or never answering (timeout): the attempt stays pending,
  nothing else is charged, and the next run settles it.
- Stripe charged but its answer was lost: the next run finds the PaymentIntent by metadata
  and records it; nothing is charged twice.
- The collector process is killed (SIGKILL, a real process death; the switch is a gateway in
  payments_killed.py, not in production code) right after Stripe answered and before the
  warehouse write: the rerun charges nothing twice.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import datetime

from ingestion.demo.localstripe import LocalStripe, free_port
from ingestion.payments.audit import audit_against_stripe
from ingestion.payments.collection import collect
from ingestion.payments.settings import PaymentSettings
from ingestion.payments.stripe_gateway import StripeGateway
from ingestion.warehouse import resolve
from tests.conftest import CLI, ROOT
from tests.integration.payments_support import (
    TEST_KEY,
    LossyProxy,
    add_finalized_invoice,
    gateway_for,
    intents_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    rows,
    stripe_server_fixture,  # noqa: F401 (fixture)
    unique,
)

NOW = datetime(2026, 2, 5, 6, 0)
LATER = datetime(2026, 2, 5, 7, 0)


def _states(config, invoice_id: str) -> list[tuple]:
    return [
        (r[1], r[2], r[3])
        for r in rows(
            config,
            "SELECT invoice_id, attempt_no, state_no, status, source"
            " FROM billing.payment_attempts ORDER BY attempt_no, state_no",
        )  # fmt: skip
        if r[0] == invoice_id
    ]


def _sources(config, invoice_id: str) -> list[str]:
    found = rows(config, "SELECT invoice_id, source FROM billing.payment_attempts"
                 " ORDER BY attempt_no, state_no")  # fmt: skip
    return [source for inv, source in found if inv == invoice_id]


def test_unreachable_stripe_leaves_pending_then_reconciles(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(warehouse_url)
    first = add_finalized_invoice(config, unique("cus"), "11.00")
    second = add_finalized_invoice(config, unique("cus"), "12.00")
    closed = StripeGateway(TEST_KEY, f"http://127.0.0.1:{free_port()}", timeout=2)
    down = collect(config, closed, NOW, PaymentSettings())
    assert down.stopped_unreachable and down.charged == 0
    # the first attempt was written before Stripe was called, and stays pending; the run
    # stopped there instead of trying every invoice against a dead server
    assert _states(config, first) == [(1, 1, "pending")]
    assert _states(config, second) == []
    assert down.summary()["pending"] == 2  # one pending attempt, one never attempted

    up = collect(config, gateway_for(stripe_server), LATER, PaymentSettings())
    assert up.reconcile is not None and up.reconcile.resent == 1
    assert _states(config, first) == [(1, 1, "pending"), (1, 2, "succeeded")]
    assert _sources(config, first) == ["collect", "reconcile"]
    assert _states(config, second) == [(1, 1, "pending"), (1, 2, "succeeded")]
    for invoice_id in (first, second):
        assert len(intents_for(stripe_server, invoice_id)) == 1


def test_stripe_timing_out_leaves_pending_then_reconciles(
    duckdb_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(duckdb_url)
    invoice_id = add_finalized_invoice(config, unique("cus"), "13.00")
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (kernel backlog), never answers
    try:
        base = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = collect(config, StripeGateway(TEST_KEY, base, timeout=1), NOW, PaymentSettings())
    finally:
        silent.close()
    assert result.stopped_unreachable
    assert _states(config, invoice_id) == [(1, 1, "pending")]
    collect(config, gateway_for(stripe_server), LATER, PaymentSettings())
    assert _states(config, invoice_id) == [(1, 1, "pending"), (1, 2, "succeeded")]
    assert len(intents_for(stripe_server, invoice_id)) == 1


def test_lost_answer_is_found_by_metadata_not_charged_again(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(warehouse_url)
    invoice_id = add_finalized_invoice(config, unique("cus"), "14.00")
    proxy = LossyProxy(stripe_server.port)
    try:
        lossy = StripeGateway(TEST_KEY, proxy.base, timeout=5)
        result = collect(config, lossy, NOW, PaymentSettings())
    finally:
        proxy.close()
    assert proxy.dropped == 1 and result.stopped_unreachable
    assert _states(config, invoice_id) == [(1, 1, "pending")]
    [charged] = intents_for(stripe_server, invoice_id)  # Stripe did charge
    assert charged["status"] == "succeeded"

    again = collect(config, gateway_for(stripe_server), LATER, PaymentSettings())
    assert again.reconcile is not None and again.reconcile.resent == 0
    assert again.charged == 0
    assert _states(config, invoice_id) == [(1, 1, "pending"), (1, 2, "succeeded")]
    assert rows(config, "SELECT stripe_payment_intent_id FROM billing.payment_attempts"
                " WHERE state_no = 2") == [(charged["id"],)]  # fmt: skip
    assert len(intents_for(stripe_server, invoice_id)) == 1


def _run_collect(url: str, server: LocalStripe, now: str, crash: bool):
    """`valueverse payments collect`; with `crash`, the same command through
    payments_killed.py, whose gateway SIGKILLs the process once Stripe answered a charge."""
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": url, "STRIPE_API_KEY": TEST_KEY,
           "STRIPE_API_BASE": server.base}  # fmt: skip
    command = (
        [sys.executable, "-m", "tests.integration.payments_killed", "charge"] if crash else [CLI]
    )
    return subprocess.run([*command, "payments", "collect", "--now", now], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_killed_between_stripe_and_warehouse_charges_nothing_twice(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(warehouse_url)
    invoice_id = add_finalized_invoice(config, unique("cus"), "15.00")
    crashed = _run_collect(warehouse_url, stripe_server, "2026-02-05T06:00:00Z", crash=True)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    [intent] = intents_for(stripe_server, invoice_id)
    assert intent["status"] == "succeeded"  # Stripe charged...
    assert _states(config, invoice_id) == [(1, 1, "pending")]  # ...the warehouse never heard
    gap = audit_against_stripe(config, gateway_for(stripe_server))  # the audit sees the gap
    assert [m.invoice_id for m in gap] == [invoice_id, invoice_id]

    rerun = _run_collect(warehouse_url, stripe_server, "2026-02-05T07:00:00Z", crash=False)
    assert rerun.returncode == 0, rerun.stderr
    assert '"paid": 1' in rerun.stdout and '"charged": 0' in rerun.stdout
    assert len(intents_for(stripe_server, invoice_id)) == 1  # charged exactly once
    assert _states(config, invoice_id) == [(1, 1, "pending"), (1, 2, "succeeded")]
    assert rows(config, "SELECT payment_status FROM billing.invoice_payment_status") == [("paid",)]


def test_cli_exits_1_when_stripe_is_unreachable(duckdb_url: str) -> None:
    config = resolve(duckdb_url)
    invoice_id = add_finalized_invoice(config, unique("cus"), "16.00")
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": duckdb_url, "STRIPE_API_KEY": TEST_KEY,
           "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"}  # fmt: skip
    result = subprocess.run([CLI, "payments", "collect"], env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert "Stripe unreachable" in result.stderr and "Traceback" not in result.stderr
    assert TEST_KEY not in result.stderr + result.stdout  # the key is never printed
    assert _states(config, invoice_id) == [(1, 1, "pending")]
