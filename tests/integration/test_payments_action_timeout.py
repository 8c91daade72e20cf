"""`requires_action` ages out into dunning, against a real localstripe server.

localstripe produces the state itself: the 3-D Secure test card 4000002500003155, confirmed off
session, leaves the PaymentIntent `requires_action` until the customer authenticates
(`POST /v1/payment_intents/{id}/_authenticate`, its stand-in for the 3-D Secure page), and it
cancels such an intent (`POST .../cancel`) and refuses to cancel one that is canceled or
succeeded already (400). So every path here runs on the real server: the cancel, the customer
who authenticated just before it, and a process killed between the cancel and the record.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from datetime import datetime, timedelta

import pytest

from ingestion.demo.localstripe import LocalStripe
from ingestion.payments.collection import collect
from ingestion.payments.gateway import FAILED, SUCCEEDED, RequestRefused
from ingestion.payments.settings import PaymentSettings
from ingestion.warehouse import WarehouseConfig, resolve
from tests.conftest import CLI, ROOT
from tests.integration.payments_support import (
    TEST_KEY,
    add_finalized_invoice,
    gateway_for,
    intents_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    rows,
    stripe_server_fixture,  # noqa: F401 (fixture)
    unique,
)

NOW = datetime(2026, 2, 5, 6, 0)
HOUR = timedelta(hours=1)
THREE_D_SECURE = "card:4000002500003155"


def _waiting_invoice(config: WarehouseConfig, server: LocalStripe) -> tuple[str, PaymentSettings]:
    """An invoice whose first attempt waits for the customer since NOW: (invoice, settings)."""
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "20.00")
    settings = PaymentSettings(overrides={customer: THREE_D_SECURE})
    assert collect(config, gateway_for(server), NOW, settings).summary()["requires_action"] == 1
    return invoice_id, settings


def _states(config: WarehouseConfig, invoice_id: str) -> list[tuple]:
    found = rows(config, "SELECT invoice_id, attempt_no, state_no, status, source, decline_code,"
                 " decline_message FROM billing.payment_attempts"
                 " ORDER BY attempt_no, state_no")  # fmt: skip
    return [r[1:] for r in found if r[0] == invoice_id]


def _events(config: WarehouseConfig, invoice_id: str) -> list[tuple]:
    found = rows(config, "SELECT invoice_id, event_type, attempt_no, due_at, detail"
                 " FROM billing.dunning_events ORDER BY recorded_at, event_type")  # fmt: skip
    return [r[1:] for r in found if r[0] == invoice_id]


def _status(config: WarehouseConfig, invoice_id: str) -> str:
    found = rows(config, "SELECT invoice_id, payment_status FROM billing.invoice_payment_status")
    return dict(found)[invoice_id]


def _authenticate(server: LocalStripe, intent: dict) -> None:
    """The customer completes 3-D Secure (localstripe's stand-in for the bank's page)."""
    form = urllib.parse.urlencode({"client_secret": intent["client_secret"], "success": "true",
                                   "key": "pk_test_valueverse"}).encode()  # fmt: skip
    url = f"{server.base}/v1/payment_intents/{intent['id']}/_authenticate"
    urllib.request.urlopen(url, form, timeout=10).close()


def test_requires_action_expires_into_dunning(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(warehouse_url)
    invoice_id, settings = _waiting_invoice(config, stripe_server)
    gateway = gateway_for(stripe_server)

    # a minute short of the 72 h default: still waiting, polled, not cancelled
    early = collect(config, gateway, NOW + 72 * HOUR - timedelta(minutes=1), settings)
    assert early.summary()["expired"] == 0 and early.summary()["requires_action"] == 1
    [intent] = intents_for(stripe_server, invoice_id)
    assert intent["status"] == "requires_action"
    assert len(_states(config, invoice_id)) == 2

    expired_at = NOW + 72 * HOUR
    result = collect(config, gateway, expired_at, settings)
    assert result.summary()["expired"] == 1 and result.summary()["failed"] == 1
    assert result.charged == 0  # the retry is due by the schedule, not at once
    [intent] = intents_for(stripe_server, invoice_id)
    assert intent["status"] == "canceled"  # the customer can no longer complete it
    assert _states(config, invoice_id) == [
        (1, 1, "pending", "collect", None, None),
        (1, 2, "requires_action", "collect", None, None),
        (1, 3, "failed", "expiry", "action_expired", "requires_action expired after 72h"),
    ]
    assert _status(config, invoice_id) == "failed"
    assert _events(config, invoice_id)[-2:] == [
        ("payment_failed", 1, None, "action_expired requires_action expired after 72h"),
        ("retry_scheduled", 2, expired_at + timedelta(days=3), None),
    ]

    # dunning retries it like any failed charge: a new PaymentIntent, attempt 2
    retry = collect(config, gateway, expired_at + timedelta(days=3), settings)
    assert retry.charged == 1 and retry.retries == 1
    assert [i["metadata"]["attempt_no"] for i in intents_for(stripe_server, invoice_id)] == [
        "1", "2",
    ]  # fmt: skip
    assert _states(config, invoice_id)[-1][:4] == (2, 2, "requires_action", "collect")


def test_customer_who_authenticated_before_the_cancel_is_paid_not_failed(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    """The warehouse still says requires_action when the timeout passes, but the customer has
    authenticated meanwhile: Stripe refuses the cancel, and the success is what is recorded."""
    config = resolve(warehouse_url)
    invoice_id, settings = _waiting_invoice(config, stripe_server)
    [intent] = intents_for(stripe_server, invoice_id)
    _authenticate(stripe_server, intent)

    result = collect(config, gateway_for(stripe_server), NOW + 73 * HOUR, settings)
    assert result.summary()["paid"] == 1 and result.summary()["expired"] == 0
    [intent] = intents_for(stripe_server, invoice_id)
    assert intent["status"] == "succeeded"
    assert _states(config, invoice_id)[-1] == (1, 3, "succeeded", "expiry", None, None)
    assert [e[0] for e in _events(config, invoice_id)] == ["requires_action", "paid"]
    assert rows(config, "SELECT count(*) FROM billing.payment_attempts"
                " WHERE status = 'failed'") == [(0,)]  # fmt: skip


def test_killed_between_cancel_and_record_then_recorded_once(
    warehouse_url: str, stripe_server: LocalStripe
) -> None:
    """SIGKILL right after Stripe cancelled (payments_killed.py), before the warehouse heard of
    it: the next run cancels again (refused: canceled already), records the failure once, and
    later runs change nothing."""
    config = resolve(warehouse_url)
    customer = unique("cus")
    invoice_id = add_finalized_invoice(config, customer, "20.00")
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": warehouse_url, "STRIPE_API_KEY": TEST_KEY,
           "STRIPE_API_BASE": stripe_server.base,
           "VALUEVERSE_STRIPE_DEFAULT_PAYMENT_METHOD": THREE_D_SECURE}  # fmt: skip
    env.pop("VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS", None)

    def run(now: datetime, *killed: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tests.integration.payments_killed", *killed]
        return subprocess.run([*(command if killed else [CLI]), "payments", "collect", "--now",
                               f"{now.isoformat()}Z"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    assert run(NOW).returncode == 0
    crashed = run(NOW + 73 * HOUR, "cancel")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    [intent] = intents_for(stripe_server, invoice_id)
    assert intent["status"] == "canceled"  # Stripe cancelled, the warehouse never heard:
    assert [s[2] for s in _states(config, invoice_id)] == ["pending", "requires_action"]

    rerun = run(NOW + 74 * HOUR)
    assert rerun.returncode == 0, rerun.stderr
    assert '"expired": 1' in rerun.stdout and '"failed": 1' in rerun.stdout
    failed = (1, 3, "failed", "expiry", "action_expired", "requires_action expired after 72h")
    assert _states(config, invoice_id)[-1] == failed
    assert run(NOW + 75 * HOUR).returncode == 0
    assert len(_states(config, invoice_id)) == 3  # recorded once
    assert len(intents_for(stripe_server, invoice_id)) == 1
    assert _events(config, invoice_id)[-1] == (
        "retry_scheduled", 2, NOW + 74 * HOUR + timedelta(days=3), None,
    )  # fmt: skip


def test_the_timeout_comes_from_the_environment(duckdb_url: str, stripe_server: LocalStripe):
    """VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS through the CLI: 1 h instead of 72 h."""
    config = resolve(duckdb_url)
    invoice_id = add_finalized_invoice(config, unique("cus"), "20.00")
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": duckdb_url, "STRIPE_API_KEY": TEST_KEY,
           "STRIPE_API_BASE": stripe_server.base,
           "VALUEVERSE_STRIPE_DEFAULT_PAYMENT_METHOD": THREE_D_SECURE,
           "VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS": "1"}  # fmt: skip
    for now, expired in (("2026-02-05T06:00:00Z", 0), ("2026-02-05T07:00:00Z", 1)):
        ran = subprocess.run([CLI, "payments", "collect", "--now", now], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert f'"expired": {expired}' in ran.stdout
    assert _states(config, invoice_id)[-1][3:] == (
        "expiry", "action_expired", "requires_action expired after 1h",
    )  # fmt: skip


def test_gateway_cancel_is_safe_to_repeat_and_never_fails_a_paid_charge(
    duckdb_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(duckdb_url)
    waiting = add_finalized_invoice(config, "cus_waiting", "20.00")
    paid = add_finalized_invoice(config, "cus_paying", "20.00")
    gateway = gateway_for(stripe_server)
    collect(config, gateway, NOW, PaymentSettings(default_payment_method=THREE_D_SECURE))
    [to_cancel] = intents_for(stripe_server, waiting)
    [to_pay] = intents_for(stripe_server, paid)
    _authenticate(stripe_server, to_pay)

    first = gateway.cancel(to_cancel["id"], "key-1")
    again = gateway.cancel(to_cancel["id"], "key-1")  # refused by the server: read again
    assert (first.status, again.status) == (FAILED, FAILED)
    assert first.intent_id == again.intent_id == to_cancel["id"]
    assert [i["status"] for i in intents_for(stripe_server, waiting)] == ["canceled"]
    succeeded = gateway.cancel(to_pay["id"], "key-2")
    assert (succeeded.status, succeeded.amount_received_minor) == (SUCCEEDED, 2000)
    assert gateway.retrieve_charge(to_pay["id"]).status == SUCCEEDED
    with pytest.raises(RequestRefused):  # a refusal the intent's state does not explain
        gateway.cancel("pi_does_not_exist", "key-3")
