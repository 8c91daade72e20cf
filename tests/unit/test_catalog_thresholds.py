"""Catalog thresholds (`thresholds:` on plans and subscriptions): the rows loaded into
raw.catalog_thresholds, and every mistake reported with its line and the entry it is in."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingestion.catalog.loader import CatalogError, parse_catalog

HEAD = """\
metrics:
  - {code: api_calls, aggregation: count}
  - {code: storage, aggregation: max}
plans:
  - code: pro
    currency: USD
    interval: month
    minimum_commitment: "100.00"
    charges:
      - {metric: api_calls, model: per_unit, unit_price: "0.10"}
    thresholds:
"""
TAIL = """\
  - code: basic
    currency: USD
    interval: month
    charges:
      - {metric: api_calls, model: per_unit, unit_price: "0.10"}
customers:
  - {id: c1, currency: USD}
subscriptions:
  - {id: s1, customer: c1, plan: pro, start: 2026-01-01, thresholds: [{spend: "20.50"}]}
"""


def parse(entries: str, tail: str = TAIL) -> list[tuple]:
    return parse_catalog(HEAD + entries + tail, "catalog.yml").rows["catalog_thresholds"]


def test_thresholds_load_with_ids_that_name_owner_kind_and_value() -> None:
    rows = parse(
        '      - {metric: api_calls, quantity: 1000}\n      - {spend: "500.00"}\n'
        "      - {commitment_percent: 80}\n"
    )
    assert rows == [
        ("plan:pro:usage:api_calls:1000", "pro", None, "usage", "api_calls", Decimal(1000)),
        ("plan:pro:spend:500", "pro", None, "spend", None, Decimal("500.00")),
        ("plan:pro:commitment:80", "pro", None, "commitment", None, Decimal(80)),
        ("subscription:s1:spend:20.5", None, "s1", "spend", None, Decimal("20.50")),
    ]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{metric: storage, quantity: 5}", "metric 'storage' is not charged by plan 'pro'"),
        ('{spend: "1", metric: api_calls}', "needs exactly one of metric (with quantity), spend"),
        (
            "{}",
            "needs exactly one of metric (with quantity), spend and commitment_percent, got none",
        ),
        ('{spend: "0"}', "spend 0 must be greater than 0"),
        ("{metric: api_calls, quantity: -3}", "quantity -3 must be greater than 0"),
        ("{metric: api_calls}", "quantity is missing"),
        ('{spend: "10", quantity: 3}', "quantity applies to a metric threshold only"),
        ("{spend: ten}", "spend"),
        ("{commitment_percent: 50, colour: red}", "unknown field 'colour'"),
    ],
)
def test_bad_thresholds_are_named_with_their_line(entry: str, problem: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse(f"      - {entry}\n")
    assert f"catalog.yml:12: plan 'pro' threshold 1: {problem}" in str(caught.value)


def test_duplicates_and_a_commitment_without_a_minimum_are_refused() -> None:
    tail = TAIL.replace("customers:", "    thresholds: [{commitment_percent: 50}]\ncustomers:")
    with pytest.raises(CatalogError) as caught:
        parse('      - {spend: "5"}\n      - {spend: "5.00"}\n', tail)
    message = str(caught.value)
    assert (
        "catalog.yml:13: plan 'pro' threshold 2: duplicate threshold 'plan:pro:spend:5'" in message
    )
    assert "plan 'basic' threshold 1: commitment_percent needs a minimum_commitment" in message
