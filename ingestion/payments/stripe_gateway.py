"""The gateway on Stripe's official SDK (`stripe.StripeClient`, API v1 namespaces).

Configuration comes from the environment only: `STRIPE_API_KEY` (a secret: never logged,
never part of a repr or an error message we write), `STRIPE_API_BASE` (default Stripe's own;
tests and the demo point it at localstripe), `VALUEVERSE_STRIPE_TIMEOUT_SECONDS` (default 30).

Why the SDK's own network retries are off: the SDK retries a timed-out POST with the same
Idempotency-Key, which Stripe deduplicates but localstripe ignores (it would charge twice).
The platform does its own retrying instead, through the pending-attempt reconciliation in
ingestion/payments/collection.py, which is safe against any server.

Lookups by metadata use Stripe's Search API and fall back to listing and filtering when the
server has no search endpoint (localstripe answers 404). Stripe's search index can lag behind
writes by up to a minute; collection covers that gap by re-sending a pending attempt with its
original idempotency key, which Stripe answers with the original PaymentIntent.
"""

from __future__ import annotations

import os
from typing import Any

import stripe

from ingestion.payments.gateway import (
    FAILED,
    PENDING,
    REQUIRES_ACTION,
    SUCCEEDED,
    UNKNOWN,
    ChargeRequest,
    ChargeResult,
    GatewayError,
    GatewayUnavailable,
    PaymentGateway,
    PaymentMethodDeclined,
    RequestRefused,
)
from ingestion.payments.settings import stripe_timeout_seconds

DEFAULT_API_BASE = stripe.DEFAULT_API_BASE
TEST_CARD_PREFIX = "card:"  # `card:4000000000000341`: a test card number (test mode only)
_STATUS = {
    "succeeded": SUCCEEDED,
    "requires_action": REQUIRES_ACTION,
    "requires_payment_method": FAILED,  # the confirmation failed: a decline
    "canceled": FAILED,
    "processing": PENDING,  # asynchronous methods: polled until final
    "requires_confirmation": PENDING,
    "requires_capture": PENDING,
}


class StripeGateway(PaymentGateway):
    """Collection through Stripe (or any server speaking its API, e.g. localstripe)."""

    def __init__(self, api_key: str, api_base: str = DEFAULT_API_BASE, timeout: float = 30.0):
        if not api_key:
            raise GatewayError("STRIPE_API_KEY is not set")
        self.api_base = api_base
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )
        self._search_supported = True

    def __repr__(self) -> str:  # never the key
        return f"StripeGateway(api_base={self.api_base!r})"

    @classmethod
    def from_env(cls) -> StripeGateway:
        return cls(
            os.environ.get("STRIPE_API_KEY", ""),
            os.environ.get("STRIPE_API_BASE") or DEFAULT_API_BASE,
            stripe_timeout_seconds(),
        )

    # customers ---------------------------------------------------------------------------
    def find_customer(self, customer_id: str) -> str | None:
        query = f"metadata['valueverse_customer_id']:'{_quoted(customer_id)}'"
        found = self._find("customers", query, {"valueverse_customer_id": customer_id})
        return str(found[0]["id"]) if found else None

    def create_customer(self, customer_id: str, idempotency_key: str) -> str:
        customer = self._call(
            self._client.v1.customers.create,
            params={"metadata": {"valueverse_customer_id": customer_id}},
            options={"idempotency_key": idempotency_key},
        )
        return str(customer.id)

    def attach_payment_method(self, customer_ref: str, spec: str) -> str:
        try:
            if spec.startswith(TEST_CARD_PREFIX):
                number = spec[len(TEST_CARD_PREFIX) :]
                card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
                created = self._call(
                    self._client.v1.payment_methods.create, params={"type": "card", "card": card}
                )
                spec = str(created.id)
            attached = self._call(
                self._client.v1.payment_methods.attach, spec, params={"customer": customer_ref}
            )
        except stripe.CardError as exc:
            raise PaymentMethodDeclined(_decline_code(exc), exc.user_message) from None
        return str(attached.id)

    # charges -----------------------------------------------------------------------------
    def charge(self, request: ChargeRequest) -> ChargeResult:
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "customer": request.customer_ref,
            "payment_method": request.payment_method_ref,
            "payment_method_types": ["card"],
            "confirm": True,
            "off_session": True,
            "metadata": {
                "invoice_id": request.invoice_id,
                "invoice_number": request.invoice_number,
                "attempt_no": str(request.attempt_no),
            },
        }
        try:
            intent = self._call(
                self._client.v1.payment_intents.create,
                params=params,
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError as exc:
            return self._declined(request, exc)
        return intent_result(intent)

    def find_charges(self, invoice_id: str, attempt_no: int) -> list[ChargeResult]:
        query = (
            f"metadata['invoice_id']:'{_quoted(invoice_id)}'"
            f" AND metadata['attempt_no']:'{attempt_no}'"
        )
        wanted = {"invoice_id": invoice_id, "attempt_no": str(attempt_no)}
        return [intent_result(intent) for intent in self._find("payment_intents", query, wanted)]

    def find_invoice_charges(self, invoice_id: str) -> list[ChargeResult]:
        query = f"metadata['invoice_id']:'{_quoted(invoice_id)}'"
        found = self._find("payment_intents", query, {"invoice_id": invoice_id})
        return [intent_result(intent) for intent in found]

    def retrieve_charge(self, intent_id: str) -> ChargeResult:
        return intent_result(self._call(self._client.v1.payment_intents.retrieve, intent_id))

    def cancel(self, intent_id: str, idempotency_key: str) -> ChargeResult:
        """Stripe answers a repeated cancel with the same key by its first answer (for 24 h);
        after that, and on localstripe, which ignores keys, a PaymentIntent that is canceled
        or succeeded already is refused (400): then it is read again. A refusal that the
        re-read does not explain (the intent still waits for the customer) is raised."""
        try:
            intent = self._call(self._client.v1.payment_intents.cancel, intent_id,
                                options={"idempotency_key": idempotency_key})  # fmt: skip
        except RequestRefused:
            current = self.retrieve_charge(intent_id)
            if current.status == REQUIRES_ACTION:
                raise
            return current
        return intent_result(intent)

    # helpers -----------------------------------------------------------------------------
    def _declined(self, request: ChargeRequest, exc: stripe.CardError) -> ChargeResult:
        """A card error on confirmation: the PaymentIntent exists and failed (or, off session,
        needs the customer to authenticate). Stripe names the intent in the error; localstripe
        does not, so it is looked up by metadata."""
        code = _decline_code(exc)
        intent = getattr(exc.error, "payment_intent", None) if exc.error else None
        found = [intent_result(intent)] if intent else self.find_charges(
            request.invoice_id, request.attempt_no
        )  # fmt: skip
        status = REQUIRES_ACTION if exc.code == "authentication_required" else FAILED
        intent_id = found[-1].intent_id if found else None
        return ChargeResult(status, intent_id=intent_id, amount_minor=request.amount_minor,
                            currency=request.currency.lower(), decline_code=code,
                            decline_message=exc.user_message)  # fmt: skip

    def _find(self, resource: str, query: str, wanted: dict[str, str]) -> list[Any]:
        service = getattr(self._client.v1, resource)
        if self._search_supported:
            try:
                found = self._call(service.search, params={"query": query, "limit": 100})
                return [_plain(item) for item in found.auto_paging_iter()]
            except RequestRefused as exc:
                if exc.http_status != 404:
                    raise
                self._search_supported = False  # a server without the Search API
        listed = self._call(service.list, params={"limit": 100})
        return [
            item
            for item in map(_plain, listed.auto_paging_iter())
            if all((item.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise GatewayUnavailable(f"Stripe unreachable: {type(exc).__name__}") from None
        except stripe.APIError as exc:  # 5xx: the outcome is unknown
            raise GatewayUnavailable(f"Stripe server error {exc.http_status}") from None
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise GatewayError(f"Stripe refused the API key ({exc.http_status})") from None
        except (stripe.InvalidRequestError, stripe.IdempotencyError) as exc:
            message = exc.user_message or str(exc) or type(exc).__name__
            raise RequestRefused(f"Stripe refused the request: {message}",
                                 exc.code, exc.http_status) from None  # fmt: skip


def _plain(obj: Any) -> dict[str, Any]:
    """An SDK object as a plain dict (StripeObject is not a dict in stripe-python 16)."""
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


def intent_result(obj: Any) -> ChargeResult:
    """A PaymentIntent (SDK object or plain dict, e.g. from a webhook) as a ChargeResult."""
    intent = _plain(obj)
    status = _STATUS.get(str(intent.get("status")), UNKNOWN)
    error = intent.get("last_payment_error") or {}
    received = intent.get("amount_received")
    if received is None and status == SUCCEEDED:  # localstripe leaves amount_received out
        received = intent.get("amount")
    return ChargeResult(
        status=status,
        intent_id=str(intent.get("id")),
        amount_minor=intent.get("amount"),
        amount_received_minor=int(received) if received is not None else None,
        currency=intent.get("currency"),
        decline_code=(error.get("decline_code") or error.get("code")) if error else None,
        decline_message=error.get("message") if error else None,
        metadata=dict(intent.get("metadata") or {}),
    )


def _decline_code(exc: stripe.StripeError) -> str | None:
    error = exc.error
    return (getattr(error, "decline_code", None) if error else None) or exc.code


def _quoted(value: str) -> str:
    """A value inside a single-quoted Search API string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
