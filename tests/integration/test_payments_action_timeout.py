"""`requires_action` ages out into dunning, against a real localstripe server.

localstripe produces the state itself: the 3-D Secure test card 4000002500003155, confirmed off
session, leaves the PaymentIntent `requires_action` until the customer authenticates
(`POST /v1/payment_intents/{id}/_authenticate`, its stand-in for the 3-D Secure page), and it
cancels such an intent (`POST .../cancel`) and refuses to cancel one that is canceled or
succeeded already (400). So every path here runs on the real server: the cancel, the customer
who authenticated just before it, and a process killed between the cancel and the record.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from datetime import datetime

import pytest

from ingestion.demo.localstripe import LocalStripe
from ingestion.payments.collection import collect
from ingestion.payments.gateway import FAILED, SUCCEEDED, RequestRefused
from ingestion.payments.settings import PaymentSettings
from ingestion.warehouse import resolve
from tests.integration.payments_support import (
    add_finalized_invoice,
    gateway_for,
    intents_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    stripe_server_fixture,  # noqa: F401 (fixture)
)

NOW = datetime(2026, 2, 5, 6, 0)
THREE_D_SECURE = "card:4000002500003155"


def _authenticate(server: LocalStripe, intent: dict) -> None:
    """The customer completes 3-D Secure (localstripe's stand-in for the bank's page)."""
    form = urllib.parse.urlencode({"client_secret": intent["client_secret"], "success": "true",
                                   "key": "pk_test_valueverse"}).encode()  # fmt: skip
    url = f"{server.base}/v1/payment_intents/{intent['id']}/_authenticate"
    urllib.request.urlopen(url, form, timeout=10).close()


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
