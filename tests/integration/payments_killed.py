"""`valueverse` with a payment gateway that is SIGKILLed right after Stripe answered a request.

Run as `python -m tests.integration.payments_killed METHOD payments collect --now ...` from the
repository root, METHOD being `charge` or `cancel`; the rest are `valueverse`'s arguments.
Everything is the real command: the CLI, the settings, the warehouse and the Stripe gateway on
the SDK; only the gateway's METHOD is followed by SIGKILL of the process itself, once Stripe's
answer is back and before the warehouse hears of it. SIGKILL runs no cleanup, flushes nothing
and cannot be caught, like a machine that dies at that moment. The switch lives here, in the
tests: production code has no fault-injection path.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn
from unittest import mock

from ingestion import cli
from ingestion.payments import stripe_gateway
from ingestion.payments.gateway import ChargeRequest, ChargeResult


def _die() -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("the process survived SIGKILL")


class KilledAfterCharge(stripe_gateway.StripeGateway):
    """The real Stripe gateway; the process dies as soon as a charge has been answered."""

    def charge(self, request: ChargeRequest) -> ChargeResult:
        super().charge(request)
        _die()


class KilledAfterCancel(stripe_gateway.StripeGateway):
    """The real Stripe gateway; the process dies as soon as a cancel has been answered."""

    def cancel(self, intent_id: str, idempotency_key: str) -> ChargeResult:
        super().cancel(intent_id, idempotency_key)
        _die()


if __name__ == "__main__":
    killed = {"charge": KilledAfterCharge, "cancel": KilledAfterCancel}[sys.argv[1]]
    # the CLI imports the class from its module when it builds the gateway
    with mock.patch.object(stripe_gateway, "StripeGateway", killed):
        sys.exit(cli.main(sys.argv[2:]))
