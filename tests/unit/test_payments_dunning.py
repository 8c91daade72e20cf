"""The pure parts of payments: the dunning policy, the schedule and action timeout settings,
minor units."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from ingestion.payments import dunning
from ingestion.payments.attempts import idempotency_key
from ingestion.payments.expiry import is_expired
from ingestion.payments.settings import (
    DEFAULT_ACTION_TIMEOUT_HOURS,
    DEFAULT_SCHEDULE_DAYS,
    PaymentSettings,
    SettingsError,
    load_overrides,
    minor_units,
    parse_schedule,
)
from ingestion.warehouse import ConfigError

T0 = datetime(2026, 3, 1, 9, 0)
DAY = timedelta(days=1)


def test_first_attempt_then_nothing_while_open_states() -> None:
    assert dunning.plan(None, 0, None, (3, 5, 7), T0) == dunning.Step(dunning.CHARGE, 1)
    for status in ("paid", "uncollectible", "pending", "requires_action"):
        assert dunning.plan(status, 1, T0, (3, 5, 7), T0 + 30 * DAY).kind == dunning.NOTHING


def test_schedule_counts_from_the_first_failure() -> None:
    schedule = (3, 5, 7)
    assert dunning.plan("failed", 1, T0, schedule, T0 + 2 * DAY) == dunning.Step(
        dunning.WAIT, 2, T0 + 3 * DAY
    )
    assert dunning.plan("failed", 1, T0, schedule, T0 + 3 * DAY) == dunning.Step(dunning.CHARGE, 2)
    # a late run makes one retry, the next one is still measured from the first failure
    assert dunning.plan("failed", 1, T0, schedule, T0 + 9 * DAY) == dunning.Step(dunning.CHARGE, 2)
    assert dunning.plan("failed", 2, T0, schedule, T0 + 9 * DAY) == dunning.Step(dunning.CHARGE, 3)
    assert dunning.plan("failed", 3, T0, schedule, T0 + 6 * DAY).due_at == T0 + 7 * DAY
    assert dunning.plan("failed", 4, T0, schedule, T0 + 7 * DAY) == dunning.Step(
        dunning.UNCOLLECTIBLE, 4
    )


def test_events_after_each_outcome() -> None:
    failed = dunning.events_after("inv", 1, "failed", "card_declined", T0, (3,), T0)
    assert [(e["event_type"], e["attempt_no"], e["due_at"]) for e in failed] == [
        ("payment_failed", 1, None),
        ("retry_scheduled", 2, T0 + 3 * DAY),
    ]
    last = dunning.events_after("inv", 2, "failed", None, T0, (3,), T0 + 3 * DAY)
    assert [(e["event_type"], e["attempt_no"]) for e in last] == [
        ("payment_failed", 2),
        ("uncollectible", 2),
    ]
    assert [
        e["event_type"] for e in dunning.events_after("inv", 2, "succeeded", None, T0, (3,), T0)
    ] == ["paid"]
    assert dunning.events_after("inv", 1, "pending", None, None, (3,), T0) == []


def test_schedule_setting() -> None:
    assert parse_schedule(None) == DEFAULT_SCHEDULE_DAYS == (3, 5, 7)
    assert parse_schedule(" 1, 2 ,10") == (1, 2, 10)
    for bad in ("3,3", "5,3", "0,2", "x", "-1"):
        with pytest.raises(SettingsError):
            parse_schedule(bad)


def test_payment_method_overrides(tmp_path) -> None:
    path = tmp_path / "methods.yml"
    path.write_text("cus_a: card:4000000000000341\ncus_b: pm_card_visa\n")
    settings = PaymentSettings(overrides=load_overrides(path))
    assert settings.payment_method_for("cus_a") == "card:4000000000000341"
    assert settings.payment_method_for("cus_z") == "pm_card_visa"
    path.write_text("- not a mapping\n")
    with pytest.raises(SettingsError):
        load_overrides(path)


def test_minor_units_are_exact() -> None:
    assert minor_units(Decimal("49.5000"), 2) == 4950
    assert minor_units(Decimal("12345.0000"), 0) == 12345  # JPY
    assert minor_units(Decimal("7.1250"), 3) == 7125  # KWD
    assert minor_units(Decimal("0.001"), 3) == 1
    with pytest.raises(SettingsError):
        minor_units(Decimal("1.005"), 2)  # never rounded here: invoices are rounded once


def test_idempotency_key_is_stable_per_invoice_and_attempt() -> None:
    key = idempotency_key("sub_a/2026-01-01", 1)
    assert key == idempotency_key("sub_a/2026-01-01", 1)
    assert key != idempotency_key("sub_a/2026-01-01", 2)
    assert key != idempotency_key("sub_b/2026-01-01", 1)
    assert key.endswith("-attempt-1") and len(key) < 255


def test_requires_action_expires_after_the_timeout_by_the_runs_clock() -> None:
    assert not is_expired(T0, T0 + timedelta(hours=72) - timedelta(seconds=1), 72)
    assert is_expired(T0, T0 + timedelta(hours=72), 72)
    assert is_expired(T0, T0 + 30 * DAY, 72)
    assert not is_expired(T0, T0 - DAY, 72)  # a clock behind the wait (a replay): not yet
    assert not is_expired(None, T0 + 30 * DAY, 72)  # never was requires_action


def test_action_timeout_setting(monkeypatch) -> None:
    monkeypatch.delenv("VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS", raising=False)
    assert PaymentSettings.from_env().action_timeout_hours == DEFAULT_ACTION_TIMEOUT_HOURS == 72
    monkeypatch.setenv("VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS", " 24 ")
    assert PaymentSettings.from_env().action_timeout_hours == 24
    for bad in ("0", "-3", "1.5", "3d", "9000"):
        monkeypatch.setenv("VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS", bad)
        with pytest.raises(ConfigError, match="^VALUEVERSE_PAYMENTS_ACTION_TIMEOUT_HOURS must be"):
            PaymentSettings.from_env()
