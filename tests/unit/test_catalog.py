"""Catalog validation (dbt/docs/contract.md section 2): every load-time error names its item.

Each test starts from one small valid catalog and breaks one thing, so a
failure points at exactly one rule.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ingestion.catalog import rules as catalog_rules
from ingestion.catalog.loader import TABLES, Catalog, CatalogError, parse_catalog
from tests.conftest import SCENARIOS

BASE = """\
metrics:
- code: api_calls
  aggregation: sum
- code: users
  aggregation: unique_count
  field: properties.user_id
plans:
- code: starter
  currency: USD
  interval: month
  fixed_fee: '49.00'
  charges:
  - metric: api_calls
    model: per_unit
    unit_price: '0.002'
  - metric: api_calls
    model: graduated
    tiers:
    - up_to: 1000
      unit_price: '0'
    - up_to: 10000
      unit_price: '0.01'
      flat_fee: '10.00'
    - up_to: null
      unit_price: '0.005'
  - metric: users
    model: package
    package_size: 10
    package_price: '5.00'
    free_units: 5
- code: euro
  currency: EUR
  interval: year
customers:
- id: cus_acme
  currency: USD
  tax_rate: '0.20'
  discounts:
  - percent_off: '15'
    start: '2026-01-01'
    end: '2026-12-01'
subscriptions:
- id: sub_acme
  customer: cus_acme
  plan: starter
  start: '2026-09-01'
"""


def parse(text: str) -> Catalog:
    return parse_catalog(text, "catalog.yml")


def error_of(text: str) -> str:
    with pytest.raises(CatalogError) as info:
        parse(text)
    return str(info.value)


def with_(old: str, new: str) -> str:
    """BASE with one exact fragment replaced (the fragment must be there)."""
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def line_of(fragment: str) -> int:
    """1-based line of BASE where `fragment` starts."""
    return BASE[: BASE.index(fragment)].count("\n") + 1


def test_base_catalog_parses_into_normalized_rows() -> None:
    catalog = parse(BASE)
    assert set(catalog.rows) == set(TABLES)
    assert catalog.rows["catalog_metrics"] == [
        ("api_calls", "sum", "quantity", None),
        ("users", "unique_count", "properties.user_id", "user_id"),
    ]
    assert catalog.rows["catalog_plans"][0] == ("starter", "USD", "month", Decimal("49.00"), None)
    charges = catalog.rows["catalog_charges"]
    assert [row[1] for row in charges] == [1, 2, 3]  # charge_index is the list order, 1-based
    assert charges[0] == (
        "starter",
        1,
        "api_calls",
        "per_unit",
        Decimal("0.002"),
        None,
        None,
        None,
        0,
    )
    assert charges[2][5:8] == (Decimal(10), Decimal("5.00"), Decimal(5))
    assert catalog.rows["catalog_charge_tiers"] == [
        ("starter", 2, 1, Decimal(0), Decimal(1000), Decimal(0), Decimal(0)),
        ("starter", 2, 2, Decimal(1000), Decimal(10000), Decimal("0.01"), Decimal("10.00")),
        ("starter", 2, 3, Decimal(10000), None, Decimal("0.005"), Decimal(0)),
    ]
    assert catalog.rows["catalog_customers"] == [("cus_acme", "USD", Decimal("0.20"))]
    assert catalog.rows["catalog_discounts"] == [
        ("cus_acme", 1, Decimal(15), None, date(2026, 1, 1), date(2026, 12, 1))
    ]
    assert catalog.rows["catalog_subscriptions"] == [
        ("sub_acme", "cus_acme", "starter", date(2026, 9, 1), None, "calendar")
    ]
    assert catalog.counts()["catalog_charge_tiers"] == 3


def test_no_float_reaches_a_row() -> None:
    for rows in parse(BASE).rows.values():
        for row in rows:
            assert not any(isinstance(value, float) for value in row)


@pytest.mark.parametrize(
    "path", sorted(SCENARIOS.glob("*/catalog.yml")), ids=lambda p: p.parent.name
)
def test_every_scenario_catalog_parses(path: Path) -> None:
    catalog = parse_catalog(path.read_text(encoding="utf-8"), str(path))
    assert catalog.rows["catalog_subscriptions"]


# --- the load-time errors of the spec ---------------------------------------------------


def test_unknown_metric() -> None:
    message = error_of(with_("  - metric: users\n", "  - metric: seats\n"))
    assert "plan 'starter' charge 3: unknown metric 'seats'" in message


def test_unknown_plan() -> None:
    message = error_of(with_("  plan: starter\n", "  plan: gold\n"))
    assert "subscription 'sub_acme': unknown plan 'gold'" in message


def test_unknown_customer() -> None:
    message = error_of(with_("  customer: cus_acme\n", "  customer: cus_nobody\n"))
    assert "subscription 'sub_acme': unknown customer 'cus_nobody'" in message


def test_plan_and_customer_currencies_differ() -> None:
    message = error_of(with_("  plan: starter\n", "  plan: euro\n"))
    assert "subscription 'sub_acme'" in message
    assert "plan 'euro' is in EUR but customer 'cus_acme' is in USD" in message


def test_overlapping_subscriptions_of_one_customer() -> None:
    message = error_of(
        BASE + "- id: sub_acme_2\n  customer: cus_acme\n  plan: starter\n"
        "  start: '2026-12-01'\n  end: '2027-01-01'\n"
    )
    assert "subscription 'sub_acme_2'" in message
    assert "overlaps subscription 'sub_acme'" in message
    assert "'cus_acme'" in message


def test_subscriptions_that_touch_are_a_plan_change_not_an_overlap() -> None:
    text = with_("  start: '2026-09-01'\n", "  start: '2026-09-01'\n  end: '2026-10-16'\n")
    text += "- id: sub_acme_2\n  customer: cus_acme\n  plan: starter\n  start: '2026-10-16'\n"
    subscriptions = parse(text).rows["catalog_subscriptions"]
    assert [row[3:5] for row in subscriptions] == [
        (date(2026, 9, 1), date(2026, 10, 16)),
        (date(2026, 10, 16), None),
    ]


def test_subscriptions_of_different_customers_may_overlap() -> None:
    text = with_("subscriptions:\n", "- id: cus_other\n  currency: USD\nsubscriptions:\n")
    text += "- id: sub_other\n  customer: cus_other\n  plan: starter\n  start: '2026-09-01'\n"
    assert len(parse(text).rows["catalog_subscriptions"]) == 2


def test_subscription_end_not_after_start() -> None:
    message = error_of(
        with_("  start: '2026-09-01'\n", "  start: '2026-02-01'\n  end: 2026-01-01\n")
    )
    end_line = line_of("  start: '2026-09-01'\n") + 1
    assert (
        f"catalog.yml:{end_line}: subscription 'sub_acme': "
        "end 2026-01-01 is not after start 2026-02-01" in message
    )
    message = error_of(
        with_("  start: '2026-09-01'\n", "  start: '2026-09-01'\n  end: '2026-09-01'\n")
    )
    assert "subscription 'sub_acme': end 2026-09-01 is not after start 2026-09-01" in message


def test_tiers_not_strictly_increasing() -> None:
    message = error_of(with_("    - up_to: 10000\n", "    - up_to: 1000\n"))
    assert "plan 'starter' charge 2 tier 2: up_to 1000 is not greater than" in message
    assert "strictly increasing" in message


def test_first_tier_must_be_above_zero() -> None:
    message = error_of(with_("    - up_to: 1000\n", "    - up_to: 0\n"))
    assert "plan 'starter' charge 2 tier 1: up_to 0 is not greater than" in message


def test_last_tier_up_to_not_null() -> None:
    message = error_of(with_("    - up_to: null\n", "    - up_to: 20000\n"))
    assert "plan 'starter' charge 2 tier 3: up_to 20000 of the last tier must be null" in message


def test_only_the_last_tier_may_be_unbounded() -> None:
    message = error_of(with_("    - up_to: 10000\n", "    - up_to: null\n"))
    assert "plan 'starter' charge 2 tier 2: up_to is null, but only the last tier" in message


def test_tiers_must_not_be_empty() -> None:
    text = with_("    model: graduated\n", "    model: volume\n    tiers: []\n")
    text = text.replace(
        "    tiers:\n    - up_to: 1000\n", "    other:\n    - up_to: 1000\n", 1
    )  # the YAML now has an unknown field; keep only the empty tiers problem in view
    message = error_of(text)
    assert "plan 'starter' charge 2: tiers is missing or empty" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    unit_price: '0.002'\n",
            "    unit_price: '-0.002'\n",
            "plan 'starter' charge 1: unit_price '-0.002' is negative",
        ),
        (
            "  fixed_fee: '49.00'\n",
            "  fixed_fee: -49\n",
            "plan 'starter': fixed_fee -49 is negative",
        ),
        (
            "      flat_fee: '10.00'\n",
            "      flat_fee: '-10.00'\n",
            "plan 'starter' charge 2 tier 2: flat_fee '-10.00' is negative",
        ),
        (
            "    package_price: '5.00'\n",
            "    package_price: '-5'\n",
            "plan 'starter' charge 3: package_price '-5' is negative",
        ),
        (
            "  - percent_off: '15'\n",
            "  - amount_off: '-1'\n",
            "customer 'cus_acme' discount 1: amount_off '-1' is negative",
        ),
    ],
)
def test_negative_prices(old: str, new: str, expected: str) -> None:
    assert expected in error_of(with_(old, new))


def test_unique_count_without_a_property_field() -> None:
    message = error_of(with_("  field: properties.user_id\n", ""))
    assert "metric 'users': unique_count needs a property field" in message
    message = error_of(with_("  field: properties.user_id\n", "  field: quantity\n"))
    assert "metric 'users': unique_count needs a property field" in message


# --- syntax, structure, types ------------------------------------------------------------


def test_yaml_syntax_error_names_the_line() -> None:
    message = error_of(with_("  interval: month\n", "  interval: [month\n"))
    assert message.startswith("catalog.yml:")
    assert "YAML syntax error" in message
    line = int(message.split(":")[1])
    assert 10 <= line <= 14


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: " + "[" * 5000 + "]" * 5000, "catalog.yml:1:35: YAML syntax error: nested deeper"),
        ("a: " + "{b: " * 200 + "1" + "}" * 200, "YAML syntax error: nested deeper than 32"),
        (
            with_("  fixed_fee: '49.00'\n", "  fixed_fee: " + "1" * 5000 + "\n"),
            "a number of 5000 characters; at most 100 are allowed",
        ),
        (
            with_("  fixed_fee: '49.00'\n", "  fixed_fee: 1." + "5" * 200 + "\n"),
            "a number of 202 characters",
        ),
    ],
)
def test_hostile_yaml_is_an_error_not_a_crash(text: str, expected: str) -> None:
    """Deep nesting and huge integers used to end in RecursionError and ValueError tracebacks."""
    assert expected in error_of(text)


def test_oversized_catalog_is_refused_before_reading_it() -> None:
    assert "the limit is 16777216" in error_of("#" * (16 * 1024 * 1024 + 1))


def test_duplicate_yaml_key_is_an_error() -> None:
    message = error_of(with_("  interval: month\n", "  interval: month\n  interval: year\n"))
    assert "catalog.yml:11:" in message and "duplicate key 'interval'" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "- code: users\n",
            "- code: api_calls\n",
            "metric 'api_calls': duplicate code 'api_calls', first defined on line 2",
        ),
        (
            "- code: euro\n",
            "- code: starter\n",
            "plan 'starter': duplicate code 'starter', first defined on line 8",
        ),
    ],
)
def test_duplicate_codes(old: str, new: str, expected: str) -> None:
    assert expected in error_of(with_(old, new))


def test_duplicate_customer_and_subscription_ids() -> None:
    text = with_("subscriptions:\n", "- id: cus_acme\n  currency: USD\nsubscriptions:\n")
    text += "- id: sub_acme\n  customer: cus_acme\n  plan: starter\n  start: '2030-01-01'\n"
    message = error_of(text)
    assert "customer 'cus_acme': duplicate id 'cus_acme', first defined on line" in message
    assert "subscription 'sub_acme': duplicate id 'sub_acme', first defined on line" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  aggregation: sum\n",
            "  aggregation: avg\n",
            "metric 'api_calls': aggregation 'avg' is not one of count, sum, max, unique_count",
        ),
        (
            "    model: per_unit\n",
            "    model: flat\n",
            "plan 'starter' charge 1: model 'flat' is not one of per_unit, graduated, volume",
        ),
        (
            "  interval: month\n",
            "  interval: week\n",
            "plan 'starter': interval 'week' is not one of month, year",
        ),
        (
            "  plan: starter\n",
            "  plan: starter\n  billing_anchor: weekly\n",
            "subscription 'sub_acme': billing_anchor 'weekly' is not one of calendar, anniversary",
        ),
        (
            "  field: properties.user_id\n",
            "  field: user_id\n",
            "metric 'users': field 'user_id' must be 'quantity' or 'properties.<name>'",
        ),
        (
            "  currency: USD\n  interval",
            "  currency: XYZ\n  interval",
            "plan 'starter': currency 'XYZ' is not a known ISO 4217 currency code",
        ),
        (
            "  currency: USD\n  tax_rate",
            "  currency: usd\n  tax_rate",
            "customer 'cus_acme': currency 'usd' is not a known ISO 4217",
        ),
    ],
)
def test_bad_enums(old: str, new: str, expected: str) -> None:
    assert expected in error_of(with_(old, new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    unit_price: '0.002'\n",
            "    unit_price: 0.002\n",
            "plan 'starter' charge 1: unit_price 0.002 is a YAML number; "
            "write money as a decimal string ('0.002')",
        ),
        (
            "  fixed_fee: '49.00'\n",
            "  fixed_fee: 49.00\n",
            "plan 'starter': fixed_fee 49.00 is a YAML number; write money as a decimal string",
        ),
        (
            "  tax_rate: '0.20'\n",
            "  tax_rate: 0.2\n",
            "customer 'cus_acme': tax_rate 0.2 is a YAML number; write money as a decimal string",
        ),
    ],
)
def test_floats_for_money_are_rejected(old: str, new: str, expected: str) -> None:
    assert expected in error_of(with_(old, new))


def test_integers_for_money_are_accepted() -> None:
    catalog = parse(with_("  fixed_fee: '49.00'\n", "  fixed_fee: 49\n"))
    assert catalog.rows["catalog_plans"][0][3] == Decimal(49)


def test_money_strings_must_be_plain_decimals() -> None:
    message = error_of(with_("    unit_price: '0.002'\n", "    unit_price: '2e-3'\n"))
    assert "plan 'starter' charge 1: unit_price '2e-3' is not a decimal string" in message


def test_more_than_twelve_fractional_digits() -> None:
    message = error_of(with_("    unit_price: '0.002'\n", "    unit_price: '0.0000000000001'\n"))
    assert (
        "plan 'starter' charge 1: unit_price '0.0000000000001' has more than 12 fractional"
        in message
    )
    # trailing zeros are not precision: this is exactly 0.002
    catalog = parse(with_("    unit_price: '0.002'\n", "    unit_price: '0.00200000000000000'\n"))
    assert catalog.rows["catalog_charges"][0][4] == Decimal("0.002")


def test_package_rules() -> None:
    message = error_of(with_("    package_size: 10\n", "    package_size: 0\n"))
    assert "plan 'starter' charge 3: package_size 0 must be greater than 0" in message
    message = error_of(with_("    free_units: 5\n", "    free_units: -1\n"))
    assert "plan 'starter' charge 3: free_units -1 must be >= 0" in message
    message = error_of(with_("    package_price: '5.00'\n", ""))
    assert "plan 'starter' charge 3: package_price is missing" in message
    catalog = parse(with_("    free_units: 5\n", ""))
    assert catalog.rows["catalog_charges"][2][7] == Decimal(0)


def test_fields_of_another_model_are_rejected() -> None:
    message = error_of(
        with_("    unit_price: '0.002'\n", "    unit_price: '0.002'\n    package_size: 5\n")
    )
    assert "plan 'starter' charge 1: package_size does not apply to model per_unit" in message


def test_unknown_fields_are_rejected() -> None:
    message = error_of(with_("  fixed_fee: '49.00'\n", "  fixed_fe: '49.00'\n"))
    assert "plan 'starter': unknown field 'fixed_fe'" in message


def test_required_fields() -> None:
    message = error_of(with_("  start: '2026-09-01'\n", ""))
    assert "subscription 'sub_acme': start is missing" in message
    message = error_of(with_("  aggregation: sum\n", ""))
    assert "metric 'api_calls': aggregation is missing" in message


def test_discount_rules() -> None:
    message = error_of(
        with_("  - percent_off: '15'\n", "  - percent_off: '15'\n    amount_off: '1'\n")
    )
    assert (
        "customer 'cus_acme' discount 1: needs exactly one of percent_off and amount_off" in message
    )
    message = error_of(with_("  - percent_off: '15'\n", "  - percent_off: '100.5'\n"))
    assert "customer 'cus_acme' discount 1: percent_off 100.5 is outside 0..100" in message
    message = error_of(with_("    end: '2026-12-01'\n", "    end: '2025-12-01'\n"))
    assert "customer 'cus_acme' discount 1: end 2025-12-01 is not after start 2026-01-01" in message


def test_negative_tax_rate() -> None:
    message = error_of(with_("  tax_rate: '0.20'\n", "  tax_rate: '-0.20'\n"))
    assert "customer 'cus_acme': tax_rate -0.20 is negative" in message


def test_dates_as_yaml_dates_or_strings_and_impossible_dates() -> None:
    catalog = parse(with_("  start: '2026-09-01'\n", "  start: 2026-09-01\n"))
    assert catalog.rows["catalog_subscriptions"][0][3] == date(2026, 9, 1)
    message = error_of(with_("  start: '2026-09-01'\n", "  start: 2026-02-30\n"))
    assert "subscription 'sub_acme': start '2026-02-30' is not a real date" in message
    message = error_of(with_("  start: '2026-09-01'\n", "  start: 2026-09-01T00:00:00Z\n"))
    assert "subscription 'sub_acme': start 2026-09-01T00:00:00+00:00 is a timestamp" in message


def test_ids_must_be_usable_by_events_and_the_export() -> None:
    message = error_of(with_("- id: sub_acme\n", "- id: sub acme,1\n"))
    assert "subscription 'sub acme,1': id 'sub acme,1' must be 1-128 characters" in message
    message = error_of(with_("  customer: cus_acme\n", "  customer: 42\n"))
    assert "subscription 'sub_acme': customer 42 is not a string (quote it)" in message


def test_every_problem_is_reported_one_per_line() -> None:
    text = with_("  aggregation: sum\n", "  aggregation: avg\n")
    text = text.replace("  plan: starter\n", "  plan: gold\n")
    lines = error_of(text).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("catalog.yml:3: metric 'api_calls'")
    assert lines[1].startswith(f"catalog.yml:{line_of('  plan: starter')}: subscription 'sub_acme'")


def test_bad_top_level_structure() -> None:
    assert "the document is empty" in error_of("")
    assert "the document is a list" in error_of("- 1\n")
    assert "catalog: metrics must be a list, got 5" in error_of("metrics: 5\n")
    assert "catalog: unknown section 'metric'" in error_of(BASE + "metric: []\n")
    message = error_of(with_("customers:\n", "customers:\n- cus_x\n"))
    assert "customer #1: must be a mapping, got 'cus_x'" in message
    assert "customer #1: id is missing" not in message


def test_filter_values_are_normalized_to_text() -> None:
    text = with_(
        "    unit_price: '0.002'\n",
        "    unit_price: '0.002'\n    filters:\n      region: eu\n      priority: 2\n"
        "      ratio: 0.10\n      big: 1.0e+2\n      exact: 0.1000000000000000000001\n"
        "      urgent: true\n      minus: -2.50\n",
    )
    filters = parse(text).rows["catalog_charge_filters"]
    assert filters == [
        ("starter", 1, "region", "eu"),
        ("starter", 1, "priority", "2"),
        ("starter", 1, "ratio", "0.1"),
        ("starter", 1, "big", "100"),
        ("starter", 1, "exact", "0.1000000000000000000001"),
        ("starter", 1, "urgent", "true"),
        ("starter", 1, "minus", "-2.5"),
    ]
    assert parse(text).rows["catalog_charges"][0][8] == 7  # filter_count


def test_filter_values_must_be_scalars() -> None:
    text = with_(
        "    unit_price: '0.002'\n", "    unit_price: '0.002'\n    filters:\n      region: [eu]\n"
    )
    message = error_of(text)
    assert "plan 'starter' charge 1: filter 'region' is a list; a filter value must be" in message


def test_quantities_may_be_yaml_numbers_or_strings() -> None:
    text = with_("    - up_to: 1000\n", "    - up_to: '1000.5'\n")
    tiers = parse(text).rows["catalog_charge_tiers"]
    assert tiers[0][4] == Decimal("1000.5") and tiers[1][3] == Decimal("1000.5")
    text = with_("    package_size: 10\n", "    package_size: 0.5\n")
    assert parse(text).rows["catalog_charges"][2][5] == Decimal("0.5")


def test_currencies_come_from_the_dbt_seed_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = tmp_path / "currencies.csv"
    seed.write_text("code,exponent\nUSD,2\nEUR,2\nXTS,0\n", encoding="utf-8")
    monkeypatch.setattr(catalog_rules, "CURRENCIES_CSV", seed)
    catalog_rules.known_currencies.cache_clear()
    try:
        assert catalog_rules.known_currencies() == {"USD", "EUR", "XTS"}
        message = error_of(BASE.replace("currency: EUR", "currency: JPY"))
        assert "plan 'euro': currency 'JPY' is not a known ISO 4217 currency code" in message
        monkeypatch.setattr(catalog_rules, "CURRENCIES_CSV", tmp_path / "missing.csv")
        catalog_rules.known_currencies.cache_clear()
        assert {"USD", "JPY", "KWD", "BHD", "EUR", "GBP"} <= catalog_rules.known_currencies()
    finally:
        catalog_rules.known_currencies.cache_clear()


def test_anchors_and_merge_keys_work_and_may_be_overridden() -> None:
    text = with_("- code: euro\n  currency: EUR\n  interval: year\n", "")
    text = text.replace("- code: starter\n", "- &starter\n  code: starter\n", 1)
    text = text.replace(
        "customers:\n", "- <<: *starter\n  code: pro\n  fixed_fee: '99.00'\ncustomers:\n", 1
    )
    plans = parse(text).rows["catalog_plans"]
    assert plans == [
        ("starter", "USD", "month", Decimal("49.00"), None),
        ("pro", "USD", "month", Decimal("99.00"), None),
    ]
    assert len(parse(text).rows["catalog_charges"]) == 6
