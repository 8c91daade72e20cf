"""`valueverse` with a payment gateway that is SIGKILLed right after Stripe accepted a charge.

Run as `python -m tests.integration.payments_killed payments collect --now ...` (arguments as
for `valueverse`) from the repository root. Everything is the real command: the CLI, the
settings, the warehouse and the Stripe gateway on the SDK; only the gateway's `charge` is
followed by SIGKILL of the process itself, once Stripe's answer is back and before the
warehouse hears of it. SIGKILL runs no cleanup, flushes nothing and cannot be caught, like a
machine that dies at that moment. The switch lives here, in the tests: production code has no
fault-injection path.
"""

from __future__ import annotations

import os
import signal
import sys
from unittest import mock

from ingestion import cli
from ingestion.payments import stripe_gateway
from ingestion.payments.gateway import ChargeRequest, ChargeResult


class KilledAfterCharge(stripe_gateway.StripeGateway):
    """The real Stripe gateway; the process dies as soon as a charge has been answered."""

    def charge(self, request: ChargeRequest) -> ChargeResult:
        super().charge(request)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("the process survived SIGKILL")


if __name__ == "__main__":
    # the CLI imports the class from its module when it builds the gateway
    with mock.patch.object(stripe_gateway, "StripeGateway", KilledAfterCharge):
        sys.exit(cli.main(sys.argv[1:]))
