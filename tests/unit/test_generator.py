"""The sample-data generator: determinism, a valid catalog, and counts that hold.

The expected counts in `GenerationSummary` are what landing must report, so here
they are recomputed independently: every line through `ingestion.landing.validation.validate`,
then first-wins dedup by event_id comparing content hashes (spec section 1).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ingestion.demo.generator import GenerationSummary, generate, sample_as_of
from ingestion.landing.validation import Reject, utc_now, validate

N = 20_000
EXPONENT = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out, events=N, seed=42)


def _read(out: Path) -> tuple[bytes, bytes]:
    return (out / "catalog.yml").read_bytes(), (out / "events.jsonl").read_bytes()


def test_same_seed_gives_identical_bytes(sample, tmp_path: Path) -> None:
    out, _ = sample
    again = generate(tmp_path / "again", events=N, seed=42)
    assert _read(tmp_path / "again") == _read(out)
    assert again.unbilled == sample[1].unbilled


def test_other_seed_gives_other_data(sample, tmp_path: Path) -> None:
    generate(tmp_path / "other", events=N, seed=43)
    catalog, events = _read(tmp_path / "other")
    base_catalog, base_events = _read(sample[0])
    assert catalog != base_catalog
    assert events != base_events


@pytest.mark.parametrize(
    ("seed", "start", "months", "customers"),
    [
        (42, date(2026, 8, 1), 3, 150),
        (7, date(2026, 1, 31), 1, 20),
        (99, date(2025, 3, 1), 12, 300),
    ],
)
def test_catalog_passes_the_catalog_validator(
    tmp_path: Path, seed, start, months, customers
) -> None:
    catalog_mod = pytest.importorskip("ingestion.catalog.loader")
    generate(tmp_path, events=100, seed=seed, start=start, months=months, customers=customers)
    text = (tmp_path / "catalog.yml").read_text()
    catalog_mod.parse_catalog(text, str(tmp_path / "catalog.yml"))  # raises CatalogError if not


def test_catalog_covers_the_semantics(sample) -> None:
    out, summary = sample
    doc = yaml.safe_load((out / "catalog.yml").read_text())
    metrics = {m["code"]: m for m in doc["metrics"]}
    assert {m["aggregation"] for m in metrics.values()} == {
        "count",
        "sum",
        "max",
        "unique_count",
        "latest",
    }
    assert metrics["active_users"]["field"] == "properties.user_id"
    assert any(
        m.get("field", "quantity").startswith("properties.") and m["aggregation"] == "sum"
        for m in metrics.values()
    )
    plans = {p["code"]: p for p in doc["plans"]}
    charges = [c for p in plans.values() for c in p["charges"]]
    assert {c["model"] for c in charges} == {"per_unit", "graduated", "volume", "package"}
    assert any(c["model"] == "package" and c.get("free_units") for c in charges)
    assert any(t.get("flat_fee") for c in charges if c["model"] == "graduated" for t in c["tiers"])
    assert any(c.get("filters", {}).get("region") for c in charges)
    assert any(p["interval"] == "year" for p in plans.values())
    assert any("fixed_fee" in p for p in plans.values())
    assert any("minimum_commitment" in p for p in plans.values())
    charged = {c["metric"] for c in charges}
    assert set(metrics) - charged, "some metric no plan charges"
    assert {p["currency"] for p in plans.values()} >= {"USD", "EUR", "JPY", "KWD"}

    for plan in plans.values():  # money as strings with the currency's digits; sane tiers
        digits = EXPONENT[plan["currency"]]
        fees = [plan.get("fixed_fee"), plan.get("minimum_commitment")]
        for charge in plan["charges"]:
            assert charge["metric"] in metrics
            fees.append(charge.get("package_price"))
            tiers = charge.get("tiers", [])
            fees += [t.get("flat_fee") for t in tiers]
            prices = [charge.get("unit_price")] + [t["unit_price"] for t in tiers]
            assert all(Decimal(p) >= 0 for p in prices if p is not None)
            if tiers:
                bounds = [t["up_to"] for t in tiers]
                assert bounds[-1] is None and None not in bounds[:-1]
                assert all(a < b for a, b in zip(bounds[:-2], bounds[1:-1], strict=True))
        for fee in filter(None, fees):
            assert isinstance(fee, str) and Decimal(fee) >= 0
            assert len(fee.partition(".")[2]) == digits, (plan["code"], fee)

    customers = {c["id"]: c for c in doc["customers"]}
    assert len(customers) == summary.customers >= 120
    assert any("tax_rate" in c for c in customers.values())
    discounts = [d for c in customers.values() for d in c.get("discounts", [])]
    assert any("percent_off" in d for d in discounts)
    assert any("amount_off" in d for d in discounts)
    assert any("end" in d for d in discounts)

    subs = doc["subscriptions"]
    by_customer: dict[str, list[dict]] = {}
    for sub in subs:
        assert plans[sub["plan"]]["currency"] == customers[sub["customer"]]["currency"]
        assert "end" not in sub or sub["end"] > sub["start"]
        by_customer.setdefault(sub["customer"], []).append(sub)
    changes = 0
    for own in by_customer.values():
        own.sort(key=lambda s: s["start"])
        for a, b in zip(own, own[1:], strict=False):
            assert "end" in a and a["end"] <= b["start"], "overlapping subscriptions"
            changes += a["end"] == b["start"]
    assert changes > 0, "a plan change (end D, next start D)"
    assert any("end" in s and s["end"] < summary.as_of.isoformat() for s in subs)
    assert {s.get("billing_anchor", "calendar") for s in subs} == {"calendar", "anniversary"}
    assert set(customers) - set(by_customer), "customers without subscription"


def test_counts_match_an_independent_recount(sample) -> None:
    out, summary = sample
    now = utc_now()
    window_start = datetime.combine(summary.window_start, datetime.min.time())
    window_end = datetime.combine(summary.as_of, datetime.min.time())
    doc = yaml.safe_load((out / "catalog.yml").read_text())
    charged = {p["code"]: {c["metric"] for c in p["charges"]} for p in doc["plans"]}
    subs: dict[str, list[dict]] = {}
    for sub in doc["subscriptions"]:
        subs.setdefault(sub["customer"], []).append(sub)

    first: dict[str, bytes] = {}
    rules: Counter[str] = Counter()
    duplicates = conflicts = unbilled = lines = 0
    for raw in (out / "events.jsonl").read_bytes().split(b"\n"):
        if not raw:
            continue
        lines += 1
        result = validate(raw, now)
        if isinstance(result, Reject):
            rules[result.rule] += 1
            continue
        assert window_start <= result.event_ts < window_end <= now
        known = first.get(result.event_id)
        if known is None:
            first[result.event_id] = result.content_hash
            day = result.event_ts.date().isoformat()
            plan = next(
                (
                    s["plan"]
                    for s in subs.get(result.customer_id, [])
                    if s["start"] <= day and ("end" not in s or day < s["end"])
                ),
                None,
            )
            unbilled += plan is None or result.metric not in charged[plan]
        elif known == result.content_hash:
            duplicates += 1
        else:
            conflicts += 1
    assert lines == summary.events == N
    assert sum(rules.values()) == summary.invalid == round(N * 0.001)
    assert dict(rules) == summary.invalid_rules
    assert len(first) == summary.accepted
    assert duplicates == summary.duplicates == round(N * 0.005)
    assert conflicts == summary.conflicts == round(N * 0.0005)
    assert unbilled == summary.unbilled > 0
    assert summary.valid == summary.accepted + duplicates + conflicts
    assert summary.expected_counts() == {
        "accepted": len(first),
        "duplicates": duplicates,
        "conflicts": conflicts,
        "rejected": sum(rules.values()),
    }


def test_events_use_the_formats_of_section_1(sample) -> None:
    text = (sample[0] / "events.jsonl").read_text()
    assert re.search(r'"timestamp": "[^"]+T[^"]+\.\d+Z"', text)
    assert re.search(r'"timestamp": "[^"]+\+02:00"', text)
    assert re.search(r'"quantity": "\d+\.\d{1,3}"', text)  # decimal strings
    assert re.search(r'"quantity": \d+\.\d{1,3}[,}]', text)  # JSON numbers with a fraction
    assert '"properties": {"region": ' in text and '"user_id": "u_' in text
    assert '"bytes": ' in text
    assert not text.startswith("\n") and text.endswith("}\n") and "\n\n" not in text
    ids = Counter(re.findall(r'^\{"event_id": "(evt_\d{9})"', text, flags=re.M))
    assert max(ids.values()) >= 2  # duplicates and conflicts re-use ids


def test_some_duplicates_are_written_differently(sample) -> None:
    lines: dict[str, str] = {}
    rewritten = 0
    for line in (sample[0] / "events.jsonl").read_text().splitlines():
        match = re.match(r'\{"event_id": "(evt_\d{9})"', line)
        if match is None:
            continue
        earlier = lines.setdefault(match.group(1), line)
        if earlier != line:
            rewritten += 1
    assert rewritten > sample[1].conflicts  # conflicts plus duplicates equal only by value


def test_sample_as_of_is_the_first_day_after_the_window(sample) -> None:
    assert sample_as_of(date(2026, 8, 1), 3) == date(2026, 11, 1) == sample[1].as_of
    assert sample_as_of(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert sample_as_of() < utc_now().date(), "the default sample lies in the past"


@pytest.mark.parametrize("events", [1, 2, 10, 999])
def test_tiny_files_keep_their_counts(tmp_path: Path, events: int) -> None:
    summary = generate(
        tmp_path, events=events, seed=1, invalid_share=0.1, duplicate_share=0.1, conflict_share=0.1
    )
    assert len((tmp_path / "events.jsonl").read_bytes().splitlines()) == events
    assert summary.accepted + summary.duplicates + summary.conflicts + summary.invalid == events
    assert summary.accepted >= 1
