"""The payment gateway interface: what collection needs from a payment processor, nothing more.

Why an interface: collection, dunning and Dagster talk to "a gateway", so tests and the demo
point the same code at a local Stripe-compatible server (localstripe) and production at Stripe,
and another processor could be added without touching the collection rules. The results are
plain dataclasses with integer minor units: no SDK object leaks into the warehouse code.

Every method either returns what the processor said or raises `GatewayUnavailable` when it
could not be asked (connection refused, timeout, 5xx): then the caller must assume the request
may or may not have reached the processor and leave the attempt pending (crash safety).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

# What an attempt can be, as recorded in billing.payment_attempts.
PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
REQUIRES_ACTION = "requires_action"
UNKNOWN = "unknown"
ATTEMPT_STATUSES = (PENDING, SUCCEEDED, FAILED, REQUIRES_ACTION, UNKNOWN)


class GatewayError(Exception):
    """The processor refused the request for a reason that is not about the card (bad key,
    bad request): the run stops, nothing is recorded as a decline."""


class GatewayUnavailable(GatewayError):
    """The processor could not be reached or did not answer in time; the outcome is unknown."""


class RequestRefused(GatewayError):
    """The processor refused one request as invalid (no such customer or payment method, an
    idempotency key reused with other parameters): a problem of that customer or invoice, not
    of the run. Collection records it on the attempt, as a failure with its reason, and goes
    on with every other invoice; dunning retries it on schedule."""

    def __init__(self, message: str, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


@dataclass(frozen=True)
class ChargeRequest:
    """One off-session charge: an invoice's amount due in integer minor units."""

    invoice_id: str
    invoice_number: str
    attempt_no: int
    amount_minor: int
    currency: str  # ISO 4217, any case; gateways send what their API wants
    customer_ref: str  # the processor's customer id
    payment_method_ref: str  # the processor's payment method id
    idempotency_key: str


@dataclass(frozen=True)
class ChargeResult:
    """What the processor says about one charge (a PaymentIntent on Stripe)."""

    status: str  # one of ATTEMPT_STATUSES
    intent_id: str | None = None
    amount_minor: int | None = None
    amount_received_minor: int | None = None
    currency: str | None = None
    decline_code: str | None = None
    decline_message: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class PaymentGateway(ABC):
    """A payment processor seen from the billing platform."""

    @abstractmethod
    def find_customer(self, customer_id: str) -> str | None:
        """The processor's customer created earlier for `customer_id` (by metadata), if any."""

    @abstractmethod
    def create_customer(self, customer_id: str, idempotency_key: str) -> str:
        """Create the processor's customer for `customer_id`; return its id."""

    @abstractmethod
    def attach_payment_method(self, customer_ref: str, spec: str) -> str:
        """Attach the payment method described by `spec` (an id, a test token, or
        `card:NUMBER` in test mode) to the customer; return the attached method's id.
        A card refused at attach time raises `PaymentMethodDeclined`."""

    @abstractmethod
    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Create and confirm an off-session charge; a decline is a result, not an error."""

    @abstractmethod
    def find_charges(self, invoice_id: str, attempt_no: int) -> list[ChargeResult]:
        """Every charge the processor holds for this invoice and attempt (by metadata)."""

    @abstractmethod
    def find_invoice_charges(self, invoice_id: str) -> list[ChargeResult]:
        """Every charge the processor holds for this invoice, any attempt (for the audit)."""

    @abstractmethod
    def retrieve_charge(self, intent_id: str) -> ChargeResult:
        """The charge's current state (polling a requires_action or processing charge)."""

    @abstractmethod
    def cancel(self, intent_id: str, idempotency_key: str) -> ChargeResult:
        """Cancel a charge still waiting for the customer; return its state afterwards.

        Safe to repeat and to race with the customer: when the processor refuses because the
        charge is no longer cancelable (canceled already, or paid in the meantime), the charge
        is read again and its real state returned, so a paid charge never comes back failed."""


class PaymentMethodDeclined(GatewayError):
    """The card was refused when attached: recorded as a failed attempt with its code."""

    def __init__(self, code: str | None, message: str | None) -> None:
        super().__init__(message or code or "payment method declined")
        self.code = code
        self.message = message
