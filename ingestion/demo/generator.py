"""Deterministic sample data: `catalog.yml` + `events.jsonl` for a usage-billing demo/load.

`generate(out_dir, events=1_000_000, seed=42)` writes a realistic catalog (see
`generator_catalog`) and `events` JSONL lines over the window [start, start+months):

- traffic skewed by customer (Pareto weights), weekday seasonality and growth, metrics
  drawn from what each customer's active plan charges, lines in time order except ~2%
  late (out-of-order) events; quantities as JSON numbers or decimal strings (up to 3
  fractional digits), timestamps `Z`, `+02:00`, `-05:00`, with or without fractions;
- some valid but unbilled usage (customers without or outside a subscription, customers
  unknown to the catalog, metrics no plan charges);
- exact duplicates (a quarter of them written differently but equal by value, section 1),
  conflicts (same event_id, other quantity) and invalid lines of many kinds.

The same arguments always give byte-identical files (stdlib `random.Random(seed)` only,
no set/hash iteration, no floats in the output). The summary's counts are what landing
the file must report: `summary.expected_counts()` matches `landing.Counts.as_dict()`.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from ingestion.demo.generator_catalog import (
    EVENT_MIX,
    UNCHARGED_MIX,
    VALUE_BUILDERS,
    Catalog,
    add_months,
    build_catalog,
    plain,
)

_OFFSETS = (0, 7200, -18000)
_SUFFIX = ("Z", "+02:00", "-05:00")
_LATE_SHARE, _LATE_SPAN = 0.02, 3 * 86400
_RING = 1 << 16  # duplicates/conflicts re-send one of the last 65536 events
_CHUNK = 50_000

# Invalid lines, used in turn: (rule code `schemas.validate` must report, line template).
_H = '{{"event_id": "{eid}", "customer_id": "{cid}", '
_R = ', "properties": {{"region": "eu"}}}}'
INVALID_LINES = (
    ("metric.invalid", _H + '"metric": "API-Calls", "timestamp": "{ts}", "quantity": {q}' + _R),
    ("quantity.range", _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": -5' + _R),
    ("timestamp.missing", _H + '"metric": "api_calls", "quantity": {q}}}'),
    ("message.not_json", _H + '"metric": "api_calls", "timestamp": "{ts}"}}'),  # truncated
    ("timestamp.invalid", _H + '"metric": "api_calls", "timestamp": "{ts19}", "quantity": {q}}}'),
    ("quantity.type", _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": "abc"}}'),
    (
        "customer_id.null",
        '{{"event_id": "{eid}", "customer_id": null, "metric": "api_calls", "timestamp": "{ts}"}}',
    ),
    (
        "properties.value_type",
        _H + '"metric": "api_calls", "timestamp": "{ts}", '
        '"properties": {{"region": {{"name": "eu"}}}}}}',
    ),
    (
        "quantity.precision",
        _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": "0.0000000001"}}',
    ),
    ("timestamp.future", _H + '"metric": "api_calls", "timestamp": "2099-01-01T00:00:00Z"}}'),
    (
        "event_id.invalid",
        '{{"event_id": "evt {eid}", "customer_id": "{cid}", "metric": '
        '"api_calls", "timestamp": "{ts}"}}',
    ),
    ("message.not_object", "[1, 2, 3]"),
    (
        "message.too_large",
        _H + '"metric": "api_calls", "timestamp": "{ts}", "properties": {{"blob": "{big}"}}}}',
    ),
    ("metric.missing", _H + '"timestamp": "{ts}", "quantity": {q}}}'),
    ("timestamp.invalid", _H + '"metric": "api_calls", "timestamp": "2026-02-30T10:00:00Z"}}'),
    ("quantity.type", _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": "1e3"}}'),
    (
        "quantity.range",
        _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": 1000000000000}}',
    ),
    ("metric.invalid", _H + '"metric": "9lives", "timestamp": "{ts}"}}'),
    ("quantity.type", _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": true}}'),
    (
        "properties.value_type",
        _H + '"metric": "api_calls", "timestamp": "{ts}", "properties": {{"tags": ["a", "b"]}}}}',
    ),
    ("timestamp.invalid", _H + '"metric": "api_calls", "timestamp": "2026-09-01T10:00Z"}}'),
    (
        "event_id.invalid",
        '{{"event_id": "", "customer_id": "{cid}", "metric": "api_calls", "timestamp": "{ts}"}}',
    ),
    ("message.not_object", '"{eid}"'),
    ("properties.null", _H + '"metric": "api_calls", "timestamp": "{ts}", "properties": null}}'),
    ("quantity.type", _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": "+5"}}'),
    ("timestamp.invalid", _H + '"metric": "api_calls", "timestamp": "2026-09-01 10:00:00Z"}}'),
    ("quantity.null", _H + '"metric": "api_calls", "timestamp": "{ts}", "quantity": null}}'),
)


def sample_as_of(start: date = date(2026, 8, 1), months: int = 3) -> date:
    """First day after the data window: `valueverse build --as-of` for the sample."""
    return add_months(start, months)


@dataclass(frozen=True)
class GenerationSummary:
    catalog_path: Path
    events_path: Path
    events: int  # lines written
    valid: int  # lines that pass validation (accepted + duplicates + conflicts)
    accepted: int  # distinct event_ids landed
    duplicates: int
    conflicts: int
    invalid: int
    unbilled: int  # accepted events with no active subscription or an uncharged metric
    customers: int
    subscriptions: int
    plans: int
    currencies: tuple[str, ...]
    window_start: date
    as_of: date  # first day after the window
    invalid_rules: dict[str, int] = field(default_factory=dict)

    def expected_counts(self) -> dict[str, int]:
        """What landing the events file reports (`ingestion.landing.batch.Counts.as_dict`)."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.invalid,
        }

    def __str__(self) -> str:
        return (
            f"wrote {self.catalog_path} ({self.customers} customers, {self.subscriptions} "
            f"subscriptions, {self.plans} plans, {'/'.join(self.currencies)}) and "
            f"{self.events_path} ({self.events} lines: {self.accepted} accepted "
            f"[{self.unbilled} unbilled], {self.duplicates} duplicates, {self.conflicts} "
            f"conflicts, {self.invalid} invalid); window {self.window_start} .. {self.as_of}, "
            f"build with --as-of {self.as_of}"
        )


def generate(
    out_dir: Path,
    events: int = 1_000_000,
    seed: int = 42,
    start: date = date(2026, 8, 1),
    months: int = 3,
    invalid_share: float = 0.001,
    duplicate_share: float = 0.005,
    conflict_share: float = 0.0005,
    customers: int = 150,
) -> GenerationSummary:
    """Write `out_dir/catalog.yml` and `out_dir/events.jsonl`; same arguments, same bytes."""
    if events < 1 or months < 1:
        raise ValueError("events and months must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # bandit: reproducible sample data, not secrets
    rng = random.Random(seed)  # nosec B311
    cat = build_catalog(rng, start, months, customers)
    catalog_path = out_dir / "catalog.yml"
    catalog_path.write_text(cat.to_yaml(), encoding="utf-8", newline="\n")
    n_inv = round(events * invalid_share)
    n_dup = round(events * duplicate_share)
    n_conf = round(events * conflict_share)
    n_special = min(n_inv + n_dup + n_conf, events - 1)
    n_inv, n_dup = min(n_inv, n_special), min(n_dup, n_special - min(n_inv, n_special))
    n_conf = n_special - n_inv - n_dup
    events_path = out_dir / "events.jsonl"
    writer = _EventWriter(rng, cat, events, n_inv, n_dup, n_conf)
    with events_path.open("w", encoding="utf-8", newline="\n") as handle:
        writer.run(handle)
    return GenerationSummary(
        catalog_path=catalog_path,
        events_path=events_path,
        events=events,
        valid=events - n_inv,
        accepted=events - n_special,
        duplicates=n_dup,
        conflicts=n_conf,
        invalid=n_inv,
        unbilled=writer.unbilled,
        customers=len(cat.customers),
        subscriptions=len(cat.subscriptions),
        plans=len(cat.plans),
        currencies=tuple(sorted({c["currency"] for c in cat.customers})),
        window_start=start,
        as_of=cat.window_end,
        invalid_rules=dict(sorted(writer.rules.items())),
    )


class _EventWriter:
    def __init__(
        self, rng: random.Random, cat: Catalog, total: int, n_inv: int, n_dup: int, n_conf: int
    ) -> None:
        self.rng, self.cat, self.total = rng, cat, total
        self.days = (cat.window_end - cat.window_start).days
        kinds = ["i"] * n_inv + ["d"] * n_dup + ["c"] * n_conf
        rng.shuffle(kinds)
        positions = sorted(rng.sample(range(1, total), len(kinds)))
        self.specials = dict(zip(positions, kinds, strict=True))
        self.unbilled = 0
        self.rules: Counter[str] = Counter()
        self.ring: list[tuple] = [()] * _RING
        self.kept = 0
        self._tables()

    def _tables(self) -> None:
        cat, days, rng = self.cat, self.days, self.rng
        d0 = cat.window_start - timedelta(days=1)
        self.daystr = [(d0 + timedelta(days=i)).isoformat() for i in range(days + 3)]
        self.hms = [
            f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
        ]
        ids = [c["id"] for c in cat.customers]
        ghosts = [f"cus_trial_{rng.randrange(10**6):06d}" for _ in range(3)]  # not in catalog
        self.ids = ids + ghosts
        subs_of: dict[str, list[dict]] = {cid: [] for cid in ids}
        for sub in cat.subscriptions:
            subs_of[sub["customer"]].append(sub)
        mixes = {fam: _mix(weights) for fam, weights in EVENT_MIX.items()}
        empty: frozenset[str] = frozenset()
        # per customer and day: charged metric set, metric mix, traffic weight
        self.charged: list[list[frozenset[str]]] = []
        self.mix: list[list[tuple]] = []
        weight: list[list[float]] = []
        for cid in self.ids:
            subs = subs_of.get(cid, [])
            w = cat.weights.get(cid, 0.5)
            fam0 = subs[0]["plan"].rsplit("_", 1)[0] if subs else "starter"
            charged_row, mix_row, w_row = [], [], []
            for d in range(days + 1):
                day = (cat.window_start + timedelta(days=d)).isoformat()
                plan = next(
                    (
                        s["plan"]
                        for s in subs
                        if s["start"] <= day and ("end" not in s or day < s["end"])
                    ),
                    None,
                )
                charged_row.append(cat.charged_metrics(plan) if plan else empty)
                mix_row.append(mixes[plan.rsplit("_", 1)[0] if plan else fam0])
                # outside a subscription a customer only trickles (unbilled) usage
                w_row.append(w if plan or not subs else w * 0.01)
            self.charged.append(charged_row)
            self.mix.append(mix_row)
            weight.append(w_row)
        self.pop = list(range(len(self.ids)))
        self.cum: list[list[float]] = []
        for d in range(days):
            acc, cum = 0.0, []
            for ci in self.pop:
                acc += weight[ci][d]
                cum.append(acc)
            self.cum.append(cum)
        # events per day: growth over the window, quieter weekends
        shape = [
            (1 + 0.3 * d / days)
            * (0.65 if (cat.window_start + timedelta(days=d)).weekday() >= 5 else 1.0)
            for d in range(days)
        ]
        n_orig, total_shape, acc, prev = self.total - len(self.specials), sum(shape), 0.0, 0
        self.per_day = []
        for s in shape:
            acc += s
            cut = round(acc / total_shape * n_orig)
            self.per_day.append(cut - prev)
            prev = cut
        self.per_day[-1] += n_orig - prev
        # per customer constants: storage base, seat count, user pool
        self.base = [
            (10 + (ci * 7919) % 5000, 3 + (ci * 31) % 200, 5 + (ci * 104729) % 3000)
            for ci in range(len(self.ids))
        ]

    def ts(self, t: int, frac: str, tz: int) -> str:
        lt = t + _OFFSETS[tz]
        return f"{self.daystr[lt // 86400 + 1]}T{self.hms[lt % 86400]}{frac}{_SUFFIX[tz]}"

    def run(self, handle) -> None:
        rng, rnd, specials, ring, ids = (
            self.rng,
            self.rng.random,
            self.specials,
            self.ring,
            self.ids,
        )
        daystr, hms, charged, mix, gens = (
            self.daystr,
            self.hms,
            self.charged,
            self.mix,
            VALUE_BUILDERS,
        )
        out: list[str] = []
        pos = 0
        for d in range(self.days):
            n = self.per_day[d]
            if n <= 0:
                continue
            cis = rng.choices(self.pop, cum_weights=self.cum[d], k=n)
            secs = sorted([int(rnd() * 86400) for _ in range(n)])
            base = d * 86400
            for j in range(n):
                while pos in specials:
                    out.append(self.special(specials[pos], pos))
                    pos += 1
                ci = cis[j]
                t = base + secs[j]
                if rnd() < _LATE_SHARE:
                    t -= int(rnd() * _LATE_SPAN)
                    if t < 0:
                        t = int(rnd() * 3600)
                codes, cum, tot = mix[ci][d]
                m = codes[bisect(cum, rnd() * tot)]
                q, pp = gens[m](rnd, self.base[ci])
                r = rnd()
                if r < 0.78:
                    frac, tz = "", 0
                elif r < 0.97:
                    frac = f".{int(rnd() * 1000):03d}" if r < 0.93 else f".{int(rnd() * 10**6):06d}"
                    tz = 0 if r < 0.88 else 1
                else:
                    frac, tz = "", 2
                if tz:
                    lt = t + _OFFSETS[tz]
                    ts = f"{daystr[lt // 86400 + 1]}T{hms[lt % 86400]}{frac}{_SUFFIX[tz]}"
                else:
                    ts = f"{daystr[t // 86400 + 1]}T{hms[t % 86400]}{frac}Z"
                eid, cid = f"evt_{pos:09d}", ids[ci]
                qp = "" if q is None else f', "quantity": {q}'
                out.append(
                    f'{{"event_id": "{eid}", "customer_id": "{cid}", "metric": "{m}", '
                    f'"timestamp": "{ts}"{qp}{pp}}}'
                )
                ring[self.kept & (_RING - 1)] = (eid, cid, m, t, frac, tz, q, pp)
                self.kept += 1
                if m not in charged[ci][t // 86400]:
                    self.unbilled += 1
                pos += 1
                if len(out) >= _CHUNK:
                    handle.write("\n".join(out) + "\n")
                    out.clear()
        while pos < self.total:
            out.append(self.special(specials[pos], pos))
            pos += 1
        if out:
            handle.write("\n".join(out) + "\n")

    def line(self, eid: str, cid: str, m: str, ts: str, q: str | None, pp: str) -> str:
        qp = "" if q is None else f', "quantity": {q}'
        return (
            f'{{"event_id": "{eid}", "customer_id": "{cid}", "metric": "{m}", '
            f'"timestamp": "{ts}"{qp}{pp}}}'
        )

    def special(self, kind: str, pos: int) -> str:
        rng = self.rng
        if kind == "i":
            return self.invalid(pos)
        eid, cid, m, t, frac, tz, q, pp = self.ring[rng.randrange(min(self.kept, _RING))]
        if kind == "c":  # same id, another quantity
            value = Decimal(q.strip('"')) + 1 if q is not None else Decimal(2)
            return self.line(eid, cid, m, self.ts(t, frac, tz), plain(value), pp)
        if rng.random() < 0.75:  # an exact re-send
            return self.line(eid, cid, m, self.ts(t, frac, tz), q, pp)
        # written differently, equal by value: other UTC offset, quantity as number <-> string
        if q is None:
            q2 = "1"
        elif q.startswith('"'):
            q2 = q[1:-1] + ("0" if "." in q else ".0")
        else:
            q2 = f'"{q}0"' if "." in q else f'"{q}.00"'
        return self.line(eid, cid, m, self.ts(t, frac, 1 if tz == 0 else 0), q2, pp)

    def invalid(self, pos: int) -> str:
        rng = self.rng
        n = sum(self.rules.values())
        rule, template = INVALID_LINES[n % len(INVALID_LINES)]
        self.rules[rule] += 1
        cid = self.ids[rng.randrange(len(self.ids))]
        ts = self.ts(rng.randrange(self.days * 86400), "", 0)
        text = template.format(
            eid=f"evt_{pos:09d}",
            cid=cid,
            ts=ts,
            ts19=ts[:19],
            q=rng.randrange(1, 100),
            big="x" * 17_000,
        )
        return text[: 40 + n % 30] if rule == "message.not_json" else text


def _mix(weights: Mapping[str, float]) -> tuple[list[str], list[float], float]:
    codes, cum, acc = [], [], 0.0
    for code, w in {**weights, **UNCHARGED_MIX}.items():
        acc += w
        codes.append(code)
        cum.append(acc)
    return codes, cum, acc
