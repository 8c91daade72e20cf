"""Catalog half of the sample-data generator: metrics, plans, customers, subscriptions.

Builds a realistic catalog (dbt/docs/contract.md section 2) from a `random.Random`, so
the same seed gives the same catalog. Every rule of section 2 holds by construction:
plan currency = customer currency, no overlapping subscriptions of one customer, ends
after starts, strictly increasing tiers with a last `up_to: null`, no negative prices.
Money is written as decimal strings: fees with the currency's minor unit digits
(JPY 0, USD/EUR 2, KWD 3), unit prices as plain decimals of any precision.
"""

from __future__ import annotations

import random
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import yaml

# code -> (minor-unit digits, units per USD): prices are written in USD and converted.
CURRENCIES: dict[str, tuple[int, Decimal]] = {
    "USD": (2, Decimal("1")),
    "EUR": (2, Decimal("0.92")),
    "JPY": (0, Decimal("150")),
    "KWD": (3, Decimal("0.307")),
}
CURRENCY_MIX = (("USD", 55), ("EUR", 25), ("JPY", 12), ("KWD", 8))
TAX_RATES = {
    "USD": ("0.0825", "0.07", "0.06"),
    "EUR": ("0.19", "0.20", "0.21"),
    "JPY": ("0.10",),
    "KWD": ("0.05",),
}

# code, aggregation, field (None = quantity). `page_views` is metered but no plan charges it.
METRICS = (
    ("api_calls", "sum", None),
    ("requests", "count", None),
    ("compute_seconds", "sum", None),
    ("messages", "sum", None),
    ("tokens", "sum", None),
    ("sms", "count", None),
    ("storage_gb", "max", None),
    ("seats", "latest", None),
    ("active_users", "unique_count", "properties.user_id"),
    ("egress_bytes", "sum", "properties.bytes"),
    ("peak_connections", "max", "properties.conns"),
    ("page_views", "count", None),
)

_REGION_PRICES = (("eu", "0.00012"), ("us", "0.0001"), ("ap", "0.00015"))
_TOKEN_TIERS = ((100_000, "0.00002", None), (1_000_000, "0.000015", "5"), (None, "0.00001", "20"))


def _region_charges(scale: str) -> list[dict]:
    return [
        {
            "metric": "compute_seconds",
            "model": "per_unit",
            "unit_price": str(Decimal(p) * Decimal(scale)),
            "filters": {"region": r},
        }
        for r, p in _REGION_PRICES
    ]


# Plan families, prices in USD. Tier/fee values are converted per currency by `_money`.
FAMILIES: dict[str, dict] = {
    "starter": {
        "interval": "month",
        "fixed_fee": "29",
        "charges": [
            {"metric": "api_calls", "model": "per_unit", "unit_price": "0.002"},
            {
                "metric": "sms",
                "model": "package",
                "package_size": 100,
                "package_price": "1.50",
                "free_units": 200,
            },
        ],
    },
    "growth": {
        "interval": "month",
        "fixed_fee": "99",
        "minimum_commitment": "250",
        "charges": [
            {
                "metric": "messages",
                "model": "graduated",
                "tiers": [
                    (1000, "0", None),
                    (10_000, "0.01", "10"),
                    (100_000, "0.005", "25"),
                    (None, "0.002", None),
                ],
            },
            {"metric": "api_calls", "model": "per_unit", "unit_price": "0.0015"},
            {
                "metric": "api_calls",
                "model": "per_unit",
                "unit_price": "0.0005",
                "filters": {"premium": True},
            },
            {"metric": "active_users", "model": "per_unit", "unit_price": "4"},
            *_region_charges("1"),
        ],
    },
    "scale": {
        "interval": "month",
        "minimum_commitment": "1000",
        "charges": [
            {"metric": "tokens", "model": "volume", "tiers": list(_TOKEN_TIERS)},
            {"metric": "storage_gb", "model": "per_unit", "unit_price": "0.023"},
            {"metric": "seats", "model": "per_unit", "unit_price": "15"},
            {"metric": "egress_bytes", "model": "per_unit", "unit_price": "0.00000000009"},
            {"metric": "peak_connections", "model": "per_unit", "unit_price": "0.05"},
            {
                "metric": "requests",
                "model": "package",
                "package_size": 1000,
                "package_price": "0.40",
            },
            *_region_charges("0.8"),
        ],
    },
    "enterprise": {
        "interval": "year",
        "fixed_fee": "12000",
        "minimum_commitment": "15000",
        "charges": [
            {"metric": "api_calls", "model": "per_unit", "unit_price": "0.001"},
            {"metric": "tokens", "model": "volume", "tiers": list(_TOKEN_TIERS)},
            {"metric": "storage_gb", "model": "per_unit", "unit_price": "0.02"},
            {"metric": "seats", "model": "per_unit", "unit_price": "12"},
            {"metric": "requests", "model": "per_unit", "unit_price": "0.0001"},
            {
                "metric": "active_users",
                "model": "graduated",
                "tiers": [(50, "0", "500"), (None, "3", None)],
            },
        ],
    },
}
FAMILY_MIX = (("starter", 45), ("growth", 30), ("scale", 18), ("enterprise", 7))
NEXT_FAMILY = {"starter": "growth", "growth": "scale", "scale": "growth", "enterprise": "scale"}
_NAMES = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "soylent",
    "wonka",
    "aperture",
    "monarch",
    "oscorp",
    "nakatomi",
    "vandelay",
    "dunder",
    "pied",
    "massive",
    "gringotts",
    "nimbus",
    "zenith",
    "polaris",
    "lumen",
    "quanta",
)
# Subscription scenarios; the first customers cycle through them so every seed covers each.
SCENARIOS = ("steady", "anniversary", "change", "churn", "new", "nosub", "yearly")
SCENARIO_MIX = (
    ("steady", 52),
    ("anniversary", 12),
    ("change", 14),
    ("churn", 8),
    ("new", 10),
    ("nosub", 4),
)


def plain(value: Decimal) -> str:
    """Decimal as plain text without exponent or trailing fractional zeros."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _money(usd: str, currency: str) -> str:
    """A fee in `currency`, rounded to and written with its minor-unit digits."""
    digits, rate = CURRENCIES[currency]
    return str((Decimal(usd) * rate).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP))


def _unit(usd: str, currency: str) -> str:
    """A unit price in `currency`, at most 12 fractional digits (the loader's DECIMAL(38,12))."""
    return plain((Decimal(usd) * CURRENCIES[currency][1]).quantize(Decimal("1e-12"), ROUND_HALF_UP))


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, clamped to the target month's last day."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month0 + 1, min(day.day, monthrange(year, month0 + 1)[1]))


@dataclass
class Catalog:
    window_start: date
    window_end: date  # exclusive: the first day after the data window
    metrics: list[dict] = field(default_factory=list)
    plans: dict[str, dict] = field(default_factory=dict)
    customers: list[dict] = field(default_factory=list)
    subscriptions: list[dict] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)  # customer id -> traffic weight

    def charged_metrics(self, plan_code: str) -> frozenset[str]:
        return frozenset(c["metric"] for c in self.plans[plan_code]["charges"])

    def to_yaml(self) -> str:
        doc = {
            "metrics": self.metrics,
            "plans": list(self.plans.values()),
            "customers": self.customers,
            "subscriptions": self.subscriptions,
        }
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)


def _plan(family: str, currency: str) -> dict:
    spec = FAMILIES[family]
    plan: dict = {
        "code": f"{family}_{currency.lower()}",
        "currency": currency,
        "interval": spec["interval"],
    }
    for key in ("fixed_fee", "minimum_commitment"):
        if key in spec:
            plan[key] = _money(spec[key], currency)
    charges = []
    for src in spec["charges"]:
        charge: dict = {"metric": src["metric"], "model": src["model"]}
        if "unit_price" in src:
            charge["unit_price"] = _unit(src["unit_price"], currency)
        if "tiers" in src:
            tiers = []
            for up_to, price, flat in src["tiers"]:
                tier: dict = {"up_to": up_to, "unit_price": _unit(price, currency)}
                if flat is not None:
                    tier["flat_fee"] = _money(flat, currency)
                tiers.append(tier)
            charge["tiers"] = tiers
        if "package_size" in src:
            charge["package_size"] = src["package_size"]
            charge["package_price"] = _money(src["package_price"], currency)
            if "free_units" in src:
                charge["free_units"] = src["free_units"]
        if "filters" in src:
            charge["filters"] = dict(src["filters"])
        charges.append(charge)
    plan["charges"] = charges
    return plan


def _pick(rng: random.Random, mix: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in mix], weights=[w for _, w in mix])[0]


def _iso(day: date) -> str:
    return day.isoformat()


def build_catalog(rng: random.Random, start: date, months: int, customers: int = 150) -> Catalog:
    end = add_months(start, months)
    days = (end - start).days
    cat = Catalog(start, end)
    cat.metrics = [
        {"code": c, "aggregation": a, **({"field": f} if f else {})} for c, a, f in METRICS
    ]
    for family in FAMILIES:
        for currency in CURRENCIES:
            plan = _plan(family, currency)
            cat.plans[plan["code"]] = plan
    currencies = list(CURRENCIES)
    for i in range(customers):
        scenario = SCENARIOS[i] if i < len(SCENARIOS) else _pick(rng, SCENARIO_MIX)
        currency = currencies[i % 4] if i < 8 else _pick(rng, CURRENCY_MIX)
        family = "enterprise" if scenario == "yearly" else _pick(rng, FAMILY_MIX)
        if family == "enterprise" and scenario in ("change", "churn", "new"):
            family = "scale"
        cid = f"cus_{_NAMES[i % len(_NAMES)]}_{i:04d}"
        customer: dict = {"id": cid, "currency": currency}
        if i % 5 in (1, 3) or rng.random() < 0.15:
            customer["tax_rate"] = rng.choice(TAX_RATES[currency])
        discounts = []
        if i % 9 == 2 or rng.random() < 0.08:
            d_start = start + timedelta(days=rng.randrange(-60, days // 2))
            disc = {"percent_off": rng.choice(("10", "15", "20", "12.5")), "start": _iso(d_start)}
            if rng.random() < 0.7:
                disc["end"] = _iso(add_months(d_start, rng.randrange(1, 7)))
            discounts.append(disc)
        if i % 11 == 4 or rng.random() < 0.05:
            d_start = add_months(start, rng.randrange(-2, months))
            disc = {
                "amount_off": _money(rng.choice(("25", "50", "100")), currency),
                "start": _iso(d_start),
            }
            if rng.random() < 0.5:
                disc["end"] = _iso(add_months(d_start, rng.randrange(1, 4)))
            discounts.append(disc)
        if discounts:
            customer["discounts"] = discounts
        cat.customers.append(customer)
        heavy = {"starter": 1.0, "growth": 3.0, "scale": 8.0, "enterprise": 15.0}[family]
        cat.weights[cid] = heavy * min(rng.paretovariate(1.16), 200.0)
        if scenario == "nosub":
            cat.weights[cid] *= 0.3
            continue
        _subscribe(rng, cat, i, cid, scenario, family, currency, months)
    return cat


def _subscribe(
    rng: random.Random,
    cat: Catalog,
    i: int,
    cid: str,
    scenario: str,
    family: str,
    currency: str,
    months: int,
) -> None:
    start = cat.window_start
    days = (cat.window_end - start).days
    plan = f"{family}_{currency.lower()}"
    sub: dict = {"id": f"sub_{i:04d}_1", "customer": cid, "plan": plan}
    if scenario == "yearly":
        # anniversary yearly: one period ends inside the window, so it is invoiced there
        first = add_months(start, -12 + rng.randrange(1, max(2, months)))
        sub["start"] = _iso(first.replace(day=rng.choice((1, 10, 15, 28))))
        sub["billing_anchor"] = "anniversary"
    elif scenario == "new":
        sub["start"] = _iso(start + timedelta(days=rng.randrange(1, max(2, days - 7))))
    else:
        before = start - timedelta(days=rng.randrange(20, 500))
        if scenario == "anniversary":  # month-end anchors exercise the short-month rule
            day = min(rng.choice((15, 28, 29, 30, 31)), monthrange(before.year, before.month)[1])
            before = before.replace(day=day)
            sub["billing_anchor"] = "anniversary"
        sub["start"] = _iso(before)
    if scenario in ("churn", "change"):
        sub["end"] = _iso(start + timedelta(days=rng.randrange(3, max(4, days - 3))))
    elif i % 13 == 6 and family == "enterprise":
        sub["end"] = _iso(add_months(date.fromisoformat(sub["start"]), 24))
    order = ("id", "customer", "plan", "start", "end", "billing_anchor")
    cat.subscriptions.append({k: sub[k] for k in order if k in sub})
    if scenario == "change":
        nxt: dict = {
            "id": f"sub_{i:04d}_2",
            "customer": cid,
            "plan": f"{NEXT_FAMILY[family]}_{currency.lower()}",
            "start": sub["end"],
        }
        if rng.random() < 0.4:
            nxt["billing_anchor"] = "anniversary"
        cat.subscriptions.append(nxt)


# --- what the events of each metric look like -------------------------------------------

EVENT_MIX = {  # family -> metric weights: what the plan charges, plus some it does not
    "starter": {"api_calls": 70, "sms": 20, "requests": 3},
    "growth": {"messages": 25, "api_calls": 35, "active_users": 15, "compute_seconds": 20},
    "scale": {
        "tokens": 25,
        "storage_gb": 3,
        "seats": 2,
        "egress_bytes": 15,
        "peak_connections": 5,
        "requests": 30,
        "compute_seconds": 15,
    },
    "enterprise": {
        "api_calls": 30,
        "tokens": 25,
        "storage_gb": 2,
        "seats": 2,
        "requests": 30,
        "active_users": 10,
    },
}
UNCHARGED_MIX = {"page_views": 2.0, "feature_evals": 0.3}  # feature_evals: not in the catalog
_REGIONS = ("eu",) * 9 + ("us",) * 8 + ("ap",) * 3
_ENDPOINTS = ("/v1/charges", "/v1/search", "/v1/users", "/v1/export")
_INSTANCES = ("c6.large", "c6.xlarge", "g5.2xlarge")
_CHANNELS = ("email", "push", "sms", "webhook")
_MODELS = ("vv-large", "vv-small", "vv-small")
_COUNTRIES = ("US", "DE", "JP", "KW", "FR")
_PATHS = ("/", "/pricing", "/docs", "/blog")

# Builders: (random, customer constants (storage base, seats, user pool)) ->
# (quantity as JSON text or None for absent, `, "properties": {...}` part or "").


def _api_calls(rnd, base):
    r = rnd()
    q = int(1 / (r + 0.01))  # mostly 1, sometimes up to 100
    prem = ', "premium": true' if r < 0.1 else ""
    region, ep = _REGIONS[int(rnd() * 20)], _ENDPOINTS[int(rnd() * 4)]
    props = f', "properties": {{"region": "{region}", "endpoint": "{ep}"{prem}}}'
    return (f'"{q}"' if r > 0.9 else str(q)), props


def _requests(rnd, base):
    r = rnd()
    status = 200 if r < 0.93 else (404 if r < 0.98 else 500)
    props = f', "properties": {{"region": "{_REGIONS[int(rnd() * 20)]}", "status": {status}}}'
    return ("1" if r < 0.05 else None), props


def _compute_seconds(rnd, base):
    ms = int(rnd() * rnd() * 3_600_000) + 1
    q, r = f"{ms // 1000}.{ms % 1000:03d}", rnd()
    region, inst = _REGIONS[int(r * 20)], _INSTANCES[int(rnd() * 3)]
    props = f', "properties": {{"region": "{region}", "instance": "{inst}"}}'
    return (f'"{q}"' if r < 0.3 else (str(ms // 1000 + 1) if r > 0.9 else q)), props


def _messages(rnd, base):
    q = int(1 / (rnd() + 0.0005))
    return str(q), f', "properties": {{"channel": "{_CHANNELS[int(rnd() * 4)]}"}}'


def _tokens(rnd, base):
    q = 50 + int(rnd() * rnd() * 50_000)
    return str(q), f', "properties": {{"model": "{_MODELS[int(rnd() * 3)]}"}}'


def _sms(rnd, base):
    return None, f', "properties": {{"country": "{_COUNTRIES[int(rnd() * 5)]}"}}'


def _storage_gb(rnd, base):
    x = base[0] * 1000 + int(rnd() * 250_000)
    q = f"{x // 1000}.{x % 1000:03d}"
    return (f'"{q}"' if x % 2 else q), ""


def _seats(rnd, base):
    return str(base[1] + int(rnd() * 4)), ""


def _active_users(rnd, base):
    r = rnd()
    return None, f', "properties": {{"user_id": "u_{int(r * r * base[2])}"}}'


def _egress_bytes(rnd, base):
    r = rnd()
    b = int(r * r * 500_000_000) + 512
    value = f'"{b}"' if r < 0.05 else str(b)  # a decimal string is numeric-readable too
    return None, f', "properties": {{"bytes": {value}, "region": "{_REGIONS[int(rnd() * 20)]}"}}'


def _peak_connections(rnd, base):
    return None, f', "properties": {{"conns": {1 + int(rnd() * rnd() * 5000)}}}'


def _page_views(rnd, base):
    return None, f', "properties": {{"path": "{_PATHS[int(rnd() * 4)]}"}}'


def _feature_evals(rnd, base):
    enabled = "true" if rnd() < 0.5 else "false"
    return None, f', "properties": {{"flag": "new_checkout", "enabled": {enabled}}}'


VALUE_BUILDERS = {
    "api_calls": _api_calls,
    "requests": _requests,
    "compute_seconds": _compute_seconds,
    "messages": _messages,
    "tokens": _tokens,
    "sms": _sms,
    "storage_gb": _storage_gb,
    "seats": _seats,
    "active_users": _active_users,
    "egress_bytes": _egress_bytes,
    "peak_connections": _peak_connections,
    "page_views": _page_views,
    "feature_evals": _feature_evals,
}
