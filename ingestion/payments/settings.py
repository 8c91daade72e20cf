"""Payment settings from the environment, and exact conversion of amounts to minor units.

- `VALUEVERSE_STRIPE_DEFAULT_PAYMENT_METHOD` (default `pm_card_visa`): the payment method
  every customer pays with. The catalog has no payment details (and must not: card data has no
  place in a billing catalog), so for the demo and tests the method comes from configuration.
- `VALUEVERSE_STRIPE_PAYMENT_METHODS_FILE`: a YAML or JSON mapping `customer_id: spec` that
  overrides it per customer. A spec is a Stripe PaymentMethod id or test token
  (`pm_card_visa`, `pm_card_chargeCustomerFail`), or `card:NUMBER` for a test card number
  (test mode / localstripe only), e.g. `card:4000002500003155`.
- `VALUEVERSE_DUNNING_SCHEDULE_DAYS` (default `3,5,7`): days after the first failure at which
  a retry is made; after the last retry fails the invoice is uncollectible.
- `VALUEVERSE_STRIPE_TIMEOUT_SECONDS` (default 30): how long one Stripe request may take.
- `VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS` (default 72): how long an attempt may wait for the
  customer to authenticate (`requires_action`) before it is cancelled and counts as a failure
  that dunning retries (expiry.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from ingestion.warehouse import env_decimal, env_int

DEFAULT_PAYMENT_METHOD = "pm_card_visa"
DEFAULT_SCHEDULE_DAYS = (3, 5, 7)
DEFAULT_ACTION_TIMEOUT_HOURS = 72


class SettingsError(ValueError):
    """A payment setting that cannot be used (reported without a traceback)."""


def parse_schedule(text: str | None) -> tuple[int, ...]:
    """`"3,5,7"` -> (3, 5, 7): whole days after the first failure, strictly increasing."""
    if text is None or not text.strip():
        return DEFAULT_SCHEDULE_DAYS
    try:
        days = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"VALUEVERSE_DUNNING_SCHEDULE_DAYS: not whole days: {text!r}") from None
    if any(d <= 0 for d in days) or any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise SettingsError(
            f"VALUEVERSE_DUNNING_SCHEDULE_DAYS must be increasing positive days, got {text!r}"
        )
    return days


def stripe_timeout_seconds() -> float:
    """VALUEVERSE_STRIPE_TIMEOUT_SECONDS, checked (a ConfigError names a bad value)."""
    seconds = env_decimal("VALUEVERSE_STRIPE_TIMEOUT_SECONDS", "30", Decimal("0.1"), Decimal(600))
    return float(seconds)


def action_timeout_hours() -> int:
    """VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS, checked (a ConfigError names a bad value): at
    least an hour, at most a year."""
    return env_int("VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS", DEFAULT_ACTION_TIMEOUT_HOURS,
                   1, 24 * 365)  # fmt: skip


def load_overrides(path: Path) -> dict[str, str]:
    """The per-customer payment method file (YAML, or JSON which is YAML too)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read payment methods file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise SettingsError(f"{path}: expected a mapping customer_id: payment method")
    return dict(data)


@dataclass(frozen=True)
class PaymentSettings:
    default_payment_method: str = DEFAULT_PAYMENT_METHOD
    overrides: dict[str, str] = field(default_factory=dict)
    schedule_days: tuple[int, ...] = DEFAULT_SCHEDULE_DAYS
    action_timeout_hours: int = DEFAULT_ACTION_TIMEOUT_HOURS

    def payment_method_for(self, customer_id: str) -> str:
        return self.overrides.get(customer_id, self.default_payment_method)

    @classmethod
    def from_env(cls) -> PaymentSettings:
        file = os.environ.get("VALUEVERSE_STRIPE_PAYMENT_METHODS_FILE")
        return cls(
            default_payment_method=os.environ.get("VALUEVERSE_STRIPE_DEFAULT_PAYMENT_METHOD")
            or DEFAULT_PAYMENT_METHOD,
            overrides=load_overrides(Path(file)) if file else {},
            schedule_days=parse_schedule(os.environ.get("VALUEVERSE_DUNNING_SCHEDULE_DAYS")),
            action_timeout_hours=action_timeout_hours(),
        )


def minor_units(amount: Decimal, exponent: int) -> int:
    """`amount` as a whole number of the currency's minor unit (JPY 0 decimals: 1234 -> 1234;
    KWD 3: 12.345 -> 12345), exactly. An amount with more decimals than the currency has is a
    bug upstream (invoices are rounded once, per line), so it is refused, never rounded here.
    Stripe additionally wants the last digit of a 3-decimal amount to be 0 (dbt/DECISIONLOG.md,
    "Payments"); that is Stripe's decision to make and is recorded if it refuses."""
    scaled = Decimal(amount).scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise SettingsError(f"{amount} has more than {exponent} decimals")
    return int(scaled)
