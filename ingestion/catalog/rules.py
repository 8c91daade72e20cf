"""Catalog validation: the YAML reader, the value rules and the document walk.

`ingestion.catalog.loader` is the public face (parse, load, write); this module
decides what the document may hold. Each value rule (what money looks like,
what a date is, how a filter value becomes text) is one function, used by
every field of that kind.

Why a custom YAML loader: PyYAML turns `0.1` into a binary float, which cannot
hold most decimal fractions, and it silently keeps the last of two equal keys.
`CatalogLoader` builds every YAML float as an exact `YamlFloat` (a Decimal made
from the scalar's source text), rejects duplicate keys, and records the line
of every mapping and value so that each problem can say where it is. Scalars
otherwise resolve as YAML 1.1 (PyYAML's rules), the dialect the scenario files
are written in: `1e2` without a dot is a string there, `1.0e+2` a number.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation, localcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ingestion.landing.validation import plain_decimal

MAX_FRACTION_DIGITS = 12  # DECIMAL(38, 12)
MAX_INTEGER_DIGITS = 38 - MAX_FRACTION_DIGITS

CURRENCIES_CSV = Path(__file__).resolve().parents[2] / "dbt" / "seeds" / "currencies.csv"

# Active ISO 4217 codes that have a minor unit; used only when the dbt seed,
# the authoritative list (it also carries the exponents), is not there.
_FALLBACK_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF
    DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK
    SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH
    UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    ZWL
    """.split()
)

ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")  # the events' customer_id rule
METRIC_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # the events' metric rule
_DECIMAL_TEXT_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DATE_TEXT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Bad(Exception):
    """One value breaks a rule; the message completes '<field> ...'."""


class YamlFloat(Decimal):
    """A YAML float scalar, exact from its source text (never a binary float).

    Its own type so money can refuse it: the spec writes money as strings, and
    a number in YAML reads as if it were approximate.
    """

    source: str


class YamlMap(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each value (1-based)."""

    line: int
    lines: dict[Any, int]

    def line_of(self, key: object) -> int:
        return self.lines.get(key, self.line)


class YamlList(list[Any]):
    """A YAML sequence that remembers the line of each entry (1-based)."""

    lines: list[int]


# The catalog's own shape nests four levels deep; the YAML reader recurses once per level, so
# a file of nothing but brackets would otherwise end in Python's recursion limit.
MAX_NESTING = 32


class CatalogLoader(yaml.SafeLoader):
    """SafeLoader with exact numbers, line numbers, duplicate-key errors and bounded nesting."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_NESTING} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_map(loader: CatalogLoader, node: yaml.MappingNode) -> Iterator[YamlMap]:
    data = YamlMap()
    data.line = node.start_mark.line + 1
    data.lines = {}
    yield data
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # resolves `<<` merge keys, putting merged pairs first
    first_own, seen = len(node.value) - own, set()
    for position, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=False)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            ) from None
        if position >= first_own and key in seen:  # a merged key may be overridden
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        if position >= first_own:
            seen.add(key)
        data[key] = loader.construct_object(value_node, deep=False)
        data.lines[key] = value_node.start_mark.line + 1


def _construct_seq(loader: CatalogLoader, node: yaml.SequenceNode) -> Iterator[YamlList]:
    data = YamlList()
    data.lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=False) for child in node.value)


# A number longer than this is refused where it is read, before Python converts it (an integer
# of over 4,300 digits would stop the conversion with an error; money has at most ~30 digits).
MAX_NUMBER_CHARS = 100


def _number_text(node: yaml.ScalarNode) -> str:
    text = str(node.value)
    if len(text) > MAX_NUMBER_CHARS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"a number of {len(text)} characters; at most {MAX_NUMBER_CHARS} are allowed",
            node.start_mark,
        )
    return text


def _construct_int(loader: CatalogLoader, node: yaml.ScalarNode) -> int:
    _number_text(node)
    return loader.construct_yaml_int(node)


def _construct_float(loader: CatalogLoader, node: yaml.ScalarNode) -> YamlFloat:
    text = _number_text(node)
    cleaned = text.replace("_", "").lower()
    sign = -1 if cleaned.startswith("-") else 1
    body = cleaned.lstrip("+-")
    if body == ".inf":
        value = YamlFloat(sign * Decimal("Infinity"))
    elif body == ".nan":
        value = YamlFloat("NaN")
    elif ":" in body:  # YAML 1.1 sexagesimal, e.g. 1:30.5
        with localcontext() as ctx:
            ctx.prec = 80
            total = Decimal(0)
            for part in body.split(":"):
                total = total * 60 + Decimal(part)
            value = YamlFloat(sign * total)
    else:
        value = YamlFloat(cleaned)
    value.source = text
    return value


def _construct_timestamp(loader: CatalogLoader, node: yaml.ScalarNode) -> object:
    """A YAML date/timestamp; an impossible one (2026-02-30) stays text for `a_date` to report."""
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


CatalogLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
CatalogLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
CatalogLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
CatalogLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
CatalogLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


@lru_cache(maxsize=1)
def known_currencies() -> frozenset[str]:
    """ISO 4217 codes the warehouse can round: the dbt seed's, else the built-in list."""
    try:
        with CURRENCIES_CSV.open(newline="", encoding="utf-8") as handle:
            codes = frozenset(
                row["code"].strip() for row in csv.DictReader(handle) if row.get("code")
            )
    except (OSError, KeyError, csv.Error):
        return _FALLBACK_CURRENCIES
    return codes or _FALLBACK_CURRENCIES


def show(value: object) -> str:
    """A value as the user wrote it, for messages."""
    if isinstance(value, YamlFloat):
        return value.source
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _fixed(value: Decimal, shown: str) -> Decimal:
    """Check that `value` fits DECIMAL(38, 12) and give it a plain exponent.

    Trailing fractional zeros beyond 12 digits are harmless and dropped; a
    positive exponent (from `1.0e+20`) is expanded so both drivers bind it as
    an ordinary numeric. The context is widened so that no step rounds (the
    default 28 digits would cut a 38-digit value).
    """
    if not value.is_finite():
        raise Bad(f"{shown} is not a finite number")
    if value.is_zero():
        return Decimal(0)  # also drops a negative zero
    with localcontext() as ctx:
        ctx.prec = len(value.as_tuple().digits) + 40
        exponent = value.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > MAX_FRACTION_DIGITS:
            raise Bad(
                f"{shown} has more than {MAX_FRACTION_DIGITS} fractional digits (DECIMAL(38,12))"
            )
        if value.adjusted() >= MAX_INTEGER_DIGITS:
            limit = f"at most {MAX_INTEGER_DIGITS} integer digits (DECIMAL(38,12))"
            raise Bad(f"{shown} is too large: {limit}")
        own = value.as_tuple().exponent
        assert isinstance(own, int)
        if own > 0 or -own > MAX_FRACTION_DIGITS:
            value = value.quantize(Decimal(1).scaleb(min(exponent, 0)))
    return value


def money(value: object) -> Decimal:
    """Money or a rate: a decimal string (`'49.00'`), or a YAML integer; never a float.

    Negative values pass here; the caller names the rule (negative price).
    """
    if isinstance(value, YamlFloat):
        raise Bad(
            f"{value.source} is a YAML number; write money as a decimal string ('{value.source}')"
        )
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Bad(f"{show(value)} is not a decimal string like '12.50'")
    if isinstance(value, str) and not _DECIMAL_TEXT_RE.fullmatch(value):
        raise Bad(f"{show(value)} is not a decimal string like '12.50' (digits, optional fraction)")
    return _fixed(Decimal(value), show(value))


def quantity(value: object) -> Decimal:
    """A quantity (tier bound, package size): a YAML number or a decimal string, exact."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise Bad(f"{show(value)} is not a number")
    if isinstance(value, str) and not _DECIMAL_TEXT_RE.fullmatch(value):
        raise Bad(f"{show(value)} is not a number")
    try:
        return _fixed(Decimal(value), show(value))
    except InvalidOperation:
        raise Bad(f"{show(value)} is not a number") from None


def a_date(value: object) -> date:
    """A calendar date: a YAML date, or a 'YYYY-MM-DD' string."""
    if isinstance(value, datetime):
        raise Bad(f"{value.isoformat()} is a timestamp; write a date YYYY-MM-DD")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE_TEXT_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise Bad(f"{show(value)} is not a real date") from None
    raise Bad(f"{show(value)} is not a date YYYY-MM-DD")


def text(value: object) -> str:
    """A non-empty string (codes, names)."""
    if not isinstance(value, str):
        raise Bad(f"{show(value)} is not a string (quote it)")
    if not value:
        raise Bad("is empty")
    return value


def identifier(value: object) -> str:
    """An id that events or the unquoted CSV export carry: 1-128 of [A-Za-z0-9_.:-]."""
    result = text(value)
    if not ID_RE.fullmatch(result):
        raise Bad(f"{show(value)} must be 1-128 characters of [A-Za-z0-9_.:-]")
    return result


def metric_code(value: object) -> str:
    result = text(value)
    if not METRIC_RE.fullmatch(result):
        raise Bad(f"{show(value)} must match ^[a-z][a-z0-9_]{{0,63}}$ (the events' metric rule)")
    return result


def currency(value: object) -> str:
    result = text(value)
    if result not in known_currencies():
        raise Bad(f"{show(value)} is not a known ISO 4217 currency code (e.g. 'USD')")
    return result


def one_of(*choices: str) -> Callable[[object], str]:
    """A converter accepting exactly one of `choices`."""

    def convert(value: object) -> str:
        if value not in choices:
            raise Bad(f"{show(value)} is not one of {', '.join(choices)}")
        return str(value)

    return convert


def filter_text(value: object) -> str:
    """A filter value in the spec's text form, as events' property texts are compared.

    Strings as they are, numbers as plain decimals (`2.0` -> `2`), booleans
    `true`/`false`; a YAML date stays the text it was written as.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise Bad(f"is {show(value)}; a filter value must be a finite number")
        with localcontext() as ctx:  # plain_decimal normalizes: keep every digit
            ctx.prec = max(28, len(value.as_tuple().digits))
            return plain_decimal(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    raise Bad(f"is {show(value)}; a filter value must be a string, number or boolean")


# --- the document walk -------------------------------------------------------------------

AGGREGATIONS = ("count", "sum", "max", "unique_count", "latest")
MODEL_FIELDS = {
    "per_unit": frozenset({"unit_price"}),
    "graduated": frozenset({"tiers"}),
    "volume": frozenset({"tiers"}),
    "package": frozenset({"package_size", "package_price", "free_units"}),
}
_SECTIONS = ("metrics", "plans", "customers", "subscriptions")
_METRIC_KEYS = frozenset({"code", "aggregation", "field"})
_PLAN_KEYS = frozenset(
    {"code", "currency", "interval", "fixed_fee", "minimum_commitment", "charges", "thresholds"}
)
_CHARGE_KEYS = frozenset({"metric", "model", "filters"}).union(*MODEL_FIELDS.values())
_TIER_KEYS = frozenset({"up_to", "unit_price", "flat_fee"})
_CUSTOMER_KEYS = frozenset({"id", "currency", "tax_rate", "discounts"})
_DISCOUNT_KEYS = frozenset({"percent_off", "amount_off", "start", "end"})
_SUBSCRIPTION_KEYS = frozenset(
    {"id", "customer", "plan", "start", "end", "billing_anchor", "thresholds"}
)
_THRESHOLD_KINDS = {"metric": "usage", "spend": "spend", "commitment_percent": "commitment"}
_THRESHOLD_KEYS = frozenset({"quantity", *_THRESHOLD_KINDS})

Row = tuple[Any, ...]
Problem = tuple[int, str]  # (line, "item: what is wrong")


def price(value: object) -> Decimal:
    """Money that must not be negative (every price, fee, commitment and amount off)."""
    result = money(value)
    if result < 0:
        raise Bad(f"{show(value)} is negative; prices must be >= 0")
    return result


def metric_field(value: object) -> str:
    result = text(value)
    if result != "quantity" and not (result.startswith("properties.") and len(result) > 11):
        raise Bad(f"{show(value)} must be 'quantity' or 'properties.<name>'")
    return result


class _Item:
    """One mapping of the document under validation: reads fields, files problems under its name."""

    def __init__(
        self, walker: Walker, node: object, name: str, line: int, allowed: frozenset[str]
    ) -> None:
        self.walker = walker
        self.name = name
        self.is_map = isinstance(node, YamlMap)
        if isinstance(node, YamlMap):
            self.node, self.line = node, node.line
            for key in node:
                if key not in allowed:
                    self.problem(f"unknown field {show(key)}", key)
        else:  # reported once; its fields are then simply absent, without more problems
            self.node, self.line = YamlMap(), line
            self.node.line, self.node.lines = line, {}
            self.problem(f"must be a mapping, got {show(node)}")

    def problem(self, message: str, key: object = None) -> None:
        line = self.node.line_of(key) if key is not None else self.line
        self.walker.problems.append((line, f"{self.name}: {message}"))

    def has(self, key: str) -> bool:
        return self.node.get(key) is not None

    def get(self, key: str, convert: Any, required: bool = False, default: Any = None) -> Any:
        """The converted value of `key`; `default` when absent or null, None when invalid."""
        if self.node.get(key) is None:
            if required and self.is_map:
                self.problem(f"{key} is missing")
                return None
            return default
        try:
            return convert(self.node[key])
        except Bad as exc:
            self.problem(f"{key} {exc}", key)
            return None

    def items(self, key: str) -> list[tuple[object, int]]:
        """The entries of a list field, each with its line; [] when absent."""
        return self.walker.entries(self.node, key, self.name)


class Walker:
    """Walks a parsed catalog into table rows, collecting every problem instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.rows: dict[str, list[Row]] = {}
        self.metrics: dict[str, int] = {}  # code -> line of its definition
        self.plans: dict[str, int] = {}
        self.customers: dict[str, int] = {}
        self.subscriptions: dict[str, int] = {}
        self.currencies: dict[tuple[str, str], str | None] = {}  # (kind, code) -> currency
        self.plan_metrics: dict[str, set[str]] = {}  # plan code -> the metrics it charges
        self.plan_minimums: dict[str, Decimal | None] = {}  # plan code -> minimum_commitment

    def entries(self, node: YamlMap, key: str, owner: str) -> list[tuple[object, int]]:
        value = node.get(key)
        if value is None:
            return []
        line = node.line_of(key)
        if not isinstance(value, list):
            self.problems.append((line, f"{owner}: {key} must be a list, got {show(value)}"))
            return []
        lines = value.lines if isinstance(value, YamlList) else [line] * len(value)
        return list(zip(value, lines, strict=True))

    def named(
        self, doc: YamlMap, section: str, kind: str, id_key: str
    ) -> list[tuple[object, int, str]]:
        """A section's entries with the name problems use: its code/id, else its position."""
        named = []
        for index, (node, line) in enumerate(self.entries(doc, section, "catalog"), 1):
            code = node.get(id_key) if isinstance(node, YamlMap) else None
            name = f"{kind} {code!r}" if isinstance(code, str) and code else f"{kind} #{index}"
            named.append((node, line, name))
        return named

    def table(self, name: str) -> list[Row]:
        return self.rows.setdefault(name, [])

    def unique(self, seen: dict[str, int], code: str | None, item: _Item, what: str) -> bool:
        """Record where `code` is defined, or file a duplicate problem naming the first one."""
        if code is None:
            return False
        if code in seen:
            item.problem(f"duplicate {what} {code!r}, first defined on line {seen[code]}")
            return False
        seen[code] = item.line
        return True

    def document(self, doc: object) -> None:
        if not isinstance(doc, YamlMap):
            expected = "a mapping with metrics, plans, customers and subscriptions"
            found = "empty" if doc is None else f"{show(doc)}"
            self.problems.append((1, f"catalog: the document is {found}; expected {expected}"))
            return
        for key in doc:
            if key not in _SECTIONS:
                self.problems.append((doc.line_of(key), f"catalog: unknown section {show(key)}"))
        for node, line, name in self.named(doc, "metrics", "metric", "code"):
            self.metric(_Item(self, node, name, line, _METRIC_KEYS))
        for node, line, name in self.named(doc, "plans", "plan", "code"):
            self.plan(_Item(self, node, name, line, _PLAN_KEYS))
        for node, line, name in self.named(doc, "customers", "customer", "id"):
            self.customer(_Item(self, node, name, line, _CUSTOMER_KEYS))
        subscriptions = [
            self.subscription(_Item(self, node, name, line, _SUBSCRIPTION_KEYS))
            for node, line, name in self.named(doc, "subscriptions", "subscription", "id")
        ]
        self.overlaps([sub for sub in subscriptions if sub is not None])

    def metric(self, item: _Item) -> None:
        code = item.get("code", metric_code, required=True)
        self.unique(self.metrics, code, item, "code")
        aggregation = item.get("aggregation", one_of(*AGGREGATIONS), required=True)
        field = item.get("field", metric_field, default="quantity")
        if aggregation == "unique_count" and field == "quantity":
            item.problem("unique_count needs a property field (field: properties.<name>)")
        prop = field[len("properties.") :] if field and field.startswith("properties.") else None
        self.table("catalog_metrics").append((code, aggregation, field, prop))

    def plan(self, item: _Item) -> None:
        code = item.get("code", text, required=True)
        plan_currency = item.get("currency", currency, required=True)
        if self.unique(self.plans, code, item, "code"):
            self.currencies["plan", code] = plan_currency
        interval = item.get("interval", one_of("month", "year"), required=True)
        fixed_fee = item.get("fixed_fee", price)
        minimum = item.get("minimum_commitment", price)
        self.table("catalog_plans").append((code, plan_currency, interval, fixed_fee, minimum))
        for index, (node, line) in enumerate(item.items("charges"), 1):
            name = f"{item.name} charge {index}"
            self.charge(_Item(self, node, name, line, _CHARGE_KEYS), code, index)
        if code is not None:
            self.plan_minimums[code] = minimum
        self.thresholds(item, "plan", code, code)

    def charge(self, item: _Item, plan: str | None, index: int) -> None:
        metric = item.get("metric", metric_code, required=True)
        if metric is not None and metric not in self.metrics:
            item.problem(f"unknown metric {metric!r}", "metric")
        if metric is not None and plan is not None:
            self.plan_metrics.setdefault(plan, set()).add(metric)
        model = item.get("model", one_of(*MODEL_FIELDS), required=True)
        unit_price = package_size = package_price = free_units = None
        if model is not None:
            for key in sorted(_CHARGE_KEYS - MODEL_FIELDS[model] - {"metric", "model", "filters"}):
                if key in item.node:
                    item.problem(f"{key} does not apply to model {model}", key)
        if model == "per_unit":
            unit_price = item.get("unit_price", price, required=True)
        elif model in ("graduated", "volume"):
            self.tiers(item, plan, index)
        elif model == "package":
            package_size = item.get("package_size", quantity, required=True)
            if package_size is not None and package_size <= 0:
                item.problem(f"package_size {package_size} must be greater than 0", "package_size")
            package_price = item.get("package_price", price, required=True)
            free_units = item.get("free_units", quantity, default=Decimal(0))
            if free_units is not None and free_units < 0:
                item.problem(f"free_units {free_units} must be >= 0", "free_units")
        filters = self.filters(item, plan, index)
        self.table("catalog_charges").append(
            (
                plan,
                index,
                metric,
                model,
                unit_price,
                package_size,
                package_price,
                free_units,
                filters,
            )
        )

    def filters(self, item: _Item, plan: str | None, index: int) -> int:
        node = item.node.get("filters")
        if node is None:
            return 0
        if not isinstance(node, YamlMap):
            item.problem(
                f"filters must be a mapping property -> value, got {show(node)}", "filters"
            )
            return 0
        for name, value in node.items():
            if not isinstance(name, str) or not name:
                item.problem(f"filter property {show(name)} must be a non-empty string", "filters")
                continue
            try:
                self.table("catalog_charge_filters").append((plan, index, name, filter_text(value)))
            except Bad as exc:
                self.problems.append((node.line_of(name), f"{item.name}: filter {name!r} {exc}"))
        return len(node)

    def tiers(self, item: _Item, plan: str | None, index: int) -> None:
        entries = item.items("tiers")
        if not entries and item.is_map:
            item.problem("tiers is missing or empty", "tiers")
        lower = Decimal(0)
        for number, (node, line) in enumerate(entries, 1):
            tier = _Item(self, node, f"{item.name} tier {number}", line, _TIER_KEYS)
            last = number == len(entries)
            up_to = tier.get("up_to", quantity)
            if up_to is None and not last and tier.node.get("up_to") is None:
                tier.problem("up_to is null, but only the last tier may be unbounded", "up_to")
            elif last and tier.has("up_to"):
                tier.problem(
                    f"up_to {show(tier.node['up_to'])} of the last tier must be null", "up_to"
                )
            if up_to is not None and up_to <= lower:
                tier.problem(
                    f"up_to {up_to} is not greater than the tier's lower bound {lower}; "
                    "tiers must be strictly increasing",
                    "up_to",
                )
            unit_price = tier.get("unit_price", price, required=True)
            flat_fee = tier.get("flat_fee", price, default=Decimal(0))
            self.table("catalog_charge_tiers").append(
                (plan, index, number, lower, up_to, unit_price, flat_fee)
            )
            lower = up_to if up_to is not None and up_to > lower else lower

    def customer(self, item: _Item) -> None:
        customer_id = item.get("id", identifier, required=True)
        customer_currency = item.get("currency", currency, required=True)
        if self.unique(self.customers, customer_id, item, "id"):
            self.currencies["customer", customer_id] = customer_currency
        tax_rate = item.get("tax_rate", money)
        if tax_rate is not None and tax_rate < 0:
            item.problem(f"tax_rate {tax_rate} is negative", "tax_rate")
        self.table("catalog_customers").append((customer_id, customer_currency, tax_rate))
        for index, (node, line) in enumerate(item.items("discounts"), 1):
            name = f"{item.name} discount {index}"
            self.discount(_Item(self, node, name, line, _DISCOUNT_KEYS), customer_id, index)

    def discount(self, item: _Item, customer_id: str | None, index: int) -> None:
        if item.has("percent_off") == item.has("amount_off") and item.is_map:
            item.problem("needs exactly one of percent_off and amount_off")
        percent_off = item.get("percent_off", money)
        if percent_off is not None and not 0 <= percent_off <= 100:
            item.problem(f"percent_off {percent_off} is outside 0..100", "percent_off")
        amount_off = item.get("amount_off", price)
        start, end = item.get("start", a_date), item.get("end", a_date)
        if start is not None and end is not None and end <= start:
            item.problem(f"end {end} is not after start {start}", "end")
        self.table("catalog_discounts").append(
            (customer_id, index, percent_off, amount_off, start, end)
        )

    def subscription(self, item: _Item) -> tuple[str, str, date, date | None, _Item] | None:
        sub_id = item.get("id", identifier, required=True)
        fresh = self.unique(self.subscriptions, sub_id, item, "id")
        customer_id = item.get("customer", identifier, required=True)
        if customer_id is not None and customer_id not in self.customers:
            item.problem(f"unknown customer {customer_id!r}", "customer")
        plan_code = item.get("plan", text, required=True)
        if plan_code is not None and plan_code not in self.plans:
            item.problem(f"unknown plan {plan_code!r}", "plan")
        plan_currency = self.currencies.get(("plan", plan_code))
        customer_currency = self.currencies.get(("customer", customer_id))
        if plan_currency and customer_currency and plan_currency != customer_currency:
            item.problem(
                f"plan {plan_code!r} is in {plan_currency} but customer {customer_id!r} "
                f"is in {customer_currency}; the currencies must be equal",
                "plan",
            )
        start = item.get("start", a_date, required=True)
        end = item.get("end", a_date)
        if start is not None and end is not None and end <= start:
            item.problem(f"end {end} is not after start {start}", "end")
        anchor = item.get("billing_anchor", one_of("calendar", "anniversary"), default="calendar")
        self.table("catalog_subscriptions").append(
            (sub_id, customer_id, plan_code, start, end, anchor)
        )
        if plan_code in self.plans:
            self.thresholds(item, "subscription", sub_id, plan_code)
        if not fresh or customer_id is None or start is None or (end is not None and end <= start):
            return None
        return sub_id, customer_id, start, end, item

    def thresholds(self, item: _Item, owner: str, code: str | None, plan: str | None) -> None:
        """A plan's or subscription's alert thresholds (ingestion/notifications/thresholds.py):
        `{metric, quantity}`, `{spend}` in the plan's currency, or `{commitment_percent}` of the
        plan's minimum commitment. The id names the owner, kind and value, so it stays the same
        across catalog versions and the same crossing is never told twice."""
        seen: dict[str, int] = {}
        for number, (node, line) in enumerate(item.items("thresholds"), 1):
            entry = _Item(self, node, f"{item.name} threshold {number}", line, _THRESHOLD_KEYS)
            keys = [key for key in _THRESHOLD_KINDS if entry.has(key)]
            if len(keys) != 1:
                given = ", ".join(keys) or "none"
                if entry.is_map:
                    entry.problem("needs exactly one of metric (with quantity), spend and "
                                  f"commitment_percent, got {given}")  # fmt: skip
                continue
            kind = _THRESHOLD_KINDS[keys[0]]
            metric, value = self.threshold_value(entry, kind, plan)
            if value is None or code is None:
                continue
            parts = [owner, code, kind, *([metric] if metric else []), plain_decimal(value)]
            ident = ":".join(parts)
            if self.unique(seen, ident, entry, "threshold"):
                self.table("catalog_thresholds").append(
                    (ident, code if owner == "plan" else None, code if owner != "plan" else None,
                     kind, metric, value)
                )  # fmt: skip

    def threshold_value(
        self, entry: _Item, kind: str, plan: str | None
    ) -> tuple[str | None, Decimal | None]:
        """(metric, value) of one threshold entry; value None when a problem was filed."""
        metric = None
        key = {"usage": "quantity", "spend": "spend", "commitment": "commitment_percent"}[kind]
        if kind == "usage":
            metric = entry.get("metric", metric_code)
            if metric is not None and metric not in self.plan_metrics.get(plan or "", set()):
                entry.problem(f"metric {metric!r} is not charged by plan {plan!r}", "metric")
                return None, None
        elif entry.has("quantity"):
            entry.problem("quantity applies to a metric threshold only", "quantity")
        value = entry.get(key, quantity if kind == "usage" else money, required=True)
        if value is not None and value <= 0:
            entry.problem(f"{key} {value} must be greater than 0", key)
            return metric, None
        if kind == "commitment" and plan is not None and not self.plan_minimums.get(plan):
            entry.problem(f"commitment_percent needs a minimum_commitment on plan {plan!r}", key)
            return metric, None
        if kind == "usage" and metric is None:
            return None, None
        return metric, value

    def overlaps(self, subs: list[tuple[str, str, date, date | None, _Item]]) -> None:
        """Two subscriptions of one customer may touch (a plan change on D) but not overlap."""
        ordered = sorted(subs, key=lambda sub: (sub[1], sub[2], sub[0]))
        for position, (sub_id, customer_id, start, end, _) in enumerate(ordered):
            for _other_id, other_customer, other_start, other_end, other in ordered[position + 1 :]:
                if other_customer != customer_id:
                    break
                if end is None or other_start < end:
                    other.problem(
                        f"[{other_start}, {other_end or 'open'}) overlaps subscription {sub_id!r} "
                        f"[{start}, {end or 'open'}) of the same customer {customer_id!r}"
                    )


def walk(doc: object) -> tuple[dict[str, list[Row]], list[Problem]]:
    """Table rows and problems (line, message) of a parsed catalog document."""
    walker = Walker()
    walker.document(doc)
    return walker.rows, walker.problems
