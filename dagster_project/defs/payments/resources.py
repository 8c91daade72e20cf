"""The payment gateway as a Dagster resource: an abstract resource in front of Stripe.

Jobs ask for `payments` (a `PaymentGatewayResource`) and get an
`ingestion.payments.gateway.PaymentGateway`; the deployment binds `StripeGatewayResource`
(the official SDK), a test can bind any other gateway. The API key is a `dg.EnvVar`, so it
is read from the environment when a step runs and never appears in the UI or the run config.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

import dagster as dg

from ingestion.payments.gateway import PaymentGateway
from ingestion.payments.settings import stripe_timeout_seconds


class PaymentGatewayResource(dg.ConfigurableResource, ABC):
    """Whatever collects money; the collection and dunning ops depend on this only."""

    @abstractmethod
    def gateway(self) -> PaymentGateway:
        """A ready gateway for one step."""


class StripeGatewayResource(PaymentGatewayResource):
    """Stripe through `stripe.StripeClient`; api_base empty means Stripe's own address."""

    api_key: str
    api_base: str = ""
    timeout_seconds: float = 30.0

    def gateway(self) -> PaymentGateway:
        from ingestion.payments.stripe_gateway import DEFAULT_API_BASE, StripeGateway

        return StripeGateway(self.api_key, self.api_base or DEFAULT_API_BASE, self.timeout_seconds)


def stripe_resource_from_env() -> StripeGatewayResource:
    """STRIPE_API_KEY (secret, resolved at run time), STRIPE_API_BASE (optional),
    VALUEVERSE_STRIPE_TIMEOUT_SECONDS (optional)."""
    return StripeGatewayResource(
        api_key=dg.EnvVar("STRIPE_API_KEY"),
        api_base=dg.EnvVar("STRIPE_API_BASE") if os.environ.get("STRIPE_API_BASE") else "",
        timeout_seconds=stripe_timeout_seconds(),
    )
