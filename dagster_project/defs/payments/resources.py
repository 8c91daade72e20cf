"""The payment gateway as a Dagster resource: an abstract resource in front of Stripe.

Jobs ask for `payments` (a `PaymentGatewayResource`) and get an
`ingestion.payments.gateway.PaymentGateway`; the deployment binds `StripeGatewayResource`
(the official SDK), a test can bind any other gateway. The key and the address are read from
the environment when a step runs: they never appear in the UI or the run config, and a launch
cannot change them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg

from ingestion.payments.gateway import PaymentGateway


class PaymentGatewayResource(dg.ConfigurableResource, ABC):
    """Whatever collects money; the collection and dunning ops depend on this only."""

    @abstractmethod
    def gateway(self) -> PaymentGateway:
        """A ready gateway for one step."""


class StripeGatewayResource(PaymentGatewayResource):
    """Stripe through `stripe.StripeClient`, set up from the environment when a step runs
    (STRIPE_API_KEY, STRIPE_API_BASE, VALUEVERSE_STRIPE_TIMEOUT_SECONDS). No field on purpose:
    whoever launches a run in the UI can set any resource field, and pointing `api_base` at
    their own host would send them the secret key as the Bearer token."""

    def gateway(self) -> PaymentGateway:
        from ingestion.payments.stripe_gateway import StripeGateway

        return StripeGateway.from_env()
