"""Usage-event model and validation: the rules of dbt/docs/contract.md section 1.

Pure functions, no I/O. Every landing path (file load, Kafka consumer) calls
`validate` on the raw bytes of one message, so a rule lives in exactly one place.

Why the two-step JSON parse: orjson is ~5x faster than the stdlib, but it turns
JSON numbers with a fraction into floats, which would lose digits of a quantity
(money path: never float). Lines whose quantity or properties hold a float are
re-parsed with `json.loads(parse_float=Decimal)`, so every number is exact.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import orjson

MAX_MESSAGE_BYTES = 16 * 1024
# What a reject keeps of a message over MAX_MESSAGE_BYTES (raw.rejected_events, the dead-letter
# topic): its first bytes, enough for a person to see what it was. Keeping all of it would let
# one message of any size cost that much again in the warehouse and on the broker.
KEPT_BYTES_OF_TOO_LARGE = 4 * 1024
MAX_QUANTITY = Decimal(10) ** 12
MAX_FRACTION_DIGITS = 9
FUTURE_TOLERANCE = timedelta(minutes=5)
_UNIX_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)

_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_METRIC_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DECIMAL_STRING_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# RFC 3339 section 5.6; ABNF literals are case-insensitive, so "t" and "z" are valid too.
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


class Event(NamedTuple):
    """A valid event in its normalized form (what is stored and compared).

    A NamedTuple rather than a frozen dataclass: it is built once per event on
    the hot path, and tuple construction is several times cheaper.
    """

    event_id: str
    customer_id: str
    metric: str
    event_ts: datetime  # naive, UTC, microsecond precision
    quantity: Decimal  # exact, at most 9 fractional digits
    properties: str  # canonical JSON: sorted keys, numbers as plain decimals
    properties_text: str  # JSON map property -> its text form (filters, unique_count)
    properties_num: str  # JSON map property -> plain decimal, for numeric-readable values
    content_hash: bytes  # 16 bytes (MD5 of the canonical form; the fast lane computes the same)


@dataclass(frozen=True, slots=True)
class Reject:
    """A message that broke a rule. `rule` is a stable code, `detail` is for people."""

    rule: str
    detail: str


class _Invalid(Exception):
    """A broken rule; caught by `validate` and turned into a Reject."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


# A number's text is its plain decimal (dbt/docs/contract.md section 2) while that has at most
# this many characters: every number the models can read (20 integer and 9 fractional digits,
# sign and point) and any 64-bit id. Past it, the plain form grows with the exponent, not with
# what was sent (`1e-10000000` is 10 MB of zeros from 11 bytes), so the exact scientific form is
# kept instead (`1E-10000000`): no longer than the digits sent, and equal for equal values, so
# comparison by value and filters (whose catalog values take the same form) still hold.
PLAIN_DECIMAL_MAX_CHARS = 32


def plain_decimal(value: Decimal) -> str:
    """Decimal as plain text: no exponent, no trailing fractional zeros (`1.10` -> `1.1`);
    beyond PLAIN_DECIMAL_MAX_CHARS, its exact scientific form (`1.5E+400`)."""
    if value == 0:
        return "0"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), value  # callers pass finite numbers
    while len(digits) > 1 and digits[-1] == 0:  # drop trailing zeros, exactly
        digits, exponent = digits[:-1], exponent + 1
    if exponent >= 0:
        length = len(digits) + exponent
    else:
        length = max(len(digits), -exponent + 1) + 1
    if length + sign > PLAIN_DECIMAL_MAX_CHARS:
        mantissa = "".join(map(str, digits))
        point = f"{mantissa[0]}.{mantissa[1:]}" if len(mantissa) > 1 else mantissa
        return f"{'-' if sign else ''}{point}E{exponent + len(digits) - 1:+d}"
    text = format(value, "f")  # exact: unlike normalize(), never rounds to the context
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def validate(raw: bytes, landing_time: datetime) -> Event | Reject:
    """Validate one message. `landing_time` is naive UTC (the batch's clock)."""
    try:
        return _validate(raw, landing_time)
    except _Invalid as exc:
        return Reject(exc.rule, exc.detail)


def _validate(raw: bytes, landing_time: datetime) -> Event:
    if len(raw) > MAX_MESSAGE_BYTES:
        reject = too_large(len(raw))
        raise _Invalid(reject.rule, reject.detail)
    doc = _parse_json(raw)
    if not isinstance(doc, dict):
        raise _Invalid("message.not_object", "message is not a JSON object")
    event_id = _required_id(doc, "event_id")
    customer_id = _required_id(doc, "customer_id")
    metric = _required(doc, "metric")
    if not isinstance(metric, str) or not _METRIC_RE.fullmatch(metric):
        raise _Invalid(
            "metric.invalid", f"metric {_show(metric)} must match ^[a-z][a-z0-9_]{{0,63}}$"
        )
    event_ts = parse_timestamp(_required(doc, "timestamp"))
    if event_ts > landing_time + FUTURE_TOLERANCE:
        raise _Invalid(
            "timestamp.future",
            f"timestamp {event_ts.isoformat()}Z is more than 5 minutes after landing time",
        )
    quantity, quantity_text = _quantity(doc)
    properties, texts, nums = _properties(doc)
    micros = (event_ts - _UNIX_EPOCH) // _MICROSECOND  # the instant, cheap to compute in SQL too
    canonical = "\x1f".join((event_id, customer_id, metric, str(micros), quantity_text, properties))
    digest = hashlib.md5(canonical.encode(), usedforsecurity=False).digest()
    return Event(event_id, customer_id, metric, event_ts, quantity, properties, texts, nums, digest)


def too_large(size: int) -> Reject:
    """The reject of a message of `size` bytes, over MAX_MESSAGE_BYTES: also for a file line
    that is never read whole (files.py learns its size while skipping it)."""
    return Reject(
        "message.too_large",
        f"message is {size} bytes, the limit is 16 KiB; only its first "
        f"{KEPT_BYTES_OF_TOO_LARGE} bytes are kept",
    )


PropertiesError = _Invalid


def _parse_json(raw: bytes) -> object:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid("message.not_utf8", "message is not valid UTF-8") from None
        if "64-bit" in str(exc) or "infinity" in str(exc):  # numbers orjson cannot hold
            return _parse_exact(raw)
        raise _Invalid("message.not_json", f"message is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and _has_float(doc):
        return _parse_exact(raw)
    return doc


def _parse_exact(raw: bytes) -> object:
    def no_constants(name: str) -> object:
        raise _Invalid("message.not_json", f"message is not valid JSON: {name} is not a number")

    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise _Invalid("message.not_json", f"message is not valid JSON: {exc}") from None


def _has_float(doc: dict) -> bool:
    if type(doc.get("quantity")) is float:
        return True
    props = doc.get("properties")
    return type(props) is dict and any(type(v) is float for v in props.values())


def _required(doc: dict, field: str) -> object:
    if field not in doc:
        raise _Invalid(f"{field}.missing", f"required field {field} is missing")
    value = doc[field]
    if value is None:
        raise _Invalid(f"{field}.null", f"field {field} is null")
    return value


def _required_id(doc: dict, field: str) -> str:
    value = _required(doc, field)
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise _Invalid(
            f"{field}.invalid", f"{field} {_show(value)} must be 1-128 chars of [A-Za-z0-9_.:-]"
        )
    return value


def parse_timestamp(value: object) -> datetime:
    """RFC 3339 section 5.6 -> naive UTC datetime, fraction truncated to microseconds."""
    if not isinstance(value, str):
        raise _Invalid("timestamp.invalid", f"timestamp {_show(value)} is not an RFC 3339 string")
    match = _RFC3339_RE.fullmatch(value)
    if match is None:
        raise _Invalid(
            "timestamp.invalid",
            f"timestamp {_show(value)} is not RFC 3339 "
            "(YYYY-MM-DDTHH:MM:SS[.frac] with Z or ±HH:MM)",
        )
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    if zulu is not None and second != "60" and (frac is None or len(frac) <= 6):
        try:  # fast path, C parser; the regex above already enforced the exact format
            return datetime.fromisoformat(value[:-1])
        except ValueError:
            raise _Invalid(
                "timestamp.invalid", f"timestamp {_show(value)} is not a real instant"
            ) from None
    micros = int((frac or "")[:6].ljust(6, "0"))
    leap = second == "60"  # RFC 3339 allows a leap second; PostgreSQL rolls it over, so do we
    try:
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            59 if leap else int(second),
            micros,
        )
        if zulu is None:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("offset out of range")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            local = local - offset if sign == "+" else local + offset
        if leap:
            local += timedelta(seconds=1)
    except (ValueError, OverflowError):
        raise _Invalid(
            "timestamp.invalid", f"timestamp {_show(value)} is not a real instant"
        ) from None
    return local


_ONE = (Decimal(1), "1")


def _quantity(doc: dict) -> tuple[Decimal, str]:
    """The exact quantity and its plain-decimal text (for the content hash)."""
    value = doc.get("quantity", _ONE)
    if value is _ONE:
        return _ONE
    if type(value) is int and 0 <= value < 10**12:  # fast path: most quantities
        return Decimal(value), str(value)
    if value is None:
        raise _Invalid("quantity.null", "field quantity is null")
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _Invalid(
            "quantity.type", f"quantity {_show(value)} is not a number or decimal string"
        )
    if isinstance(value, str):
        if not _DECIMAL_STRING_RE.fullmatch(value):
            raise _Invalid(
                "quantity.type",
                f"quantity {_show(value)} is not a string of digits with an optional fraction",
            )
        value = Decimal(value)
    quantity = Decimal(value)
    if not quantity.is_finite() or quantity < 0 or quantity >= MAX_QUANTITY:
        raise _Invalid(
            "quantity.range", f"quantity {_show(doc['quantity'])} is outside 0 <= q < 10^12"
        )
    if _fraction_digits(quantity) > MAX_FRACTION_DIGITS:
        raise _Invalid(
            "quantity.precision",
            f"quantity {_show(doc['quantity'])} has more than 9 fractional digits",
        )
    if quantity == 0:
        quantity = Decimal(0)  # no negative zero
    return quantity, plain_decimal(quantity)


def _fraction_digits(value: Decimal) -> int:
    """Fractional digits once trailing zeros are dropped (exact, no context rounding)."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    while digits and digits[-1] == 0 and exponent < 0:  # drop trailing zeros
        digits, exponent = digits[:-1], exponent + 1
    return max(0, -exponent)


def _properties(doc: dict) -> tuple[str, str, str]:
    if "properties" not in doc:
        return "{}", "{}", "{}"
    props = doc["properties"]
    if props is None:
        raise _Invalid("properties.null", "field properties is null")
    if not isinstance(props, dict):
        raise _Invalid("properties.type", "properties is not a JSON object")
    return canonical_properties(props)


def canonical_properties(props: dict) -> tuple[str, str, str]:
    """(canonical JSON, text map, numeric map) of a properties object.

    Raises PropertiesError when a value breaks a rule. Shared with the
    vectorized fast lane, which calls it once per distinct properties object.
    """
    if any("\x00" in k or (type(v) is str and "\x00" in v) for k, v in props.items()):
        raise _Invalid(
            "properties.nul_character",
            "properties contain U+0000, which PostgreSQL text and jsonb cannot store",
        )
    if all(type(v) is str for v in props.values()):  # the common case, one dumps
        texts_json = orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode()
        numeric = {k: plain_decimal(Decimal(v)) for k, v in props.items() if _is_decimal_text(v)}
        return texts_json, texts_json, _dumps(dict(sorted(numeric.items())))
    canonical: dict[str, object] = {}
    texts: dict[str, str] = {}
    nums: dict[str, str] = {}
    for key in sorted(props):
        value = props[key]
        kind = type(value)
        if kind is str:
            canonical[key] = texts[key] = value
            if _is_decimal_text(value):
                nums[key] = plain_decimal(Decimal(value))
        elif kind is int:  # an int's text is its plain decimal; orjson writes it as is
            text = texts[key] = nums[key] = str(value)
            canonical[key] = value if -(2**63) <= value < 2**64 else orjson.Fragment(text)
        elif kind is bool:
            canonical[key] = value
            texts[key] = "true" if value else "false"
        elif kind is Decimal:  # a fraction, from the exact re-parse
            text = texts[key] = nums[key] = plain_decimal(value)
            canonical[key] = orjson.Fragment(text)
        else:
            raise _Invalid(
                "properties.value_type",
                f"property {key!r} holds {_kind(value)}; "
                "only strings, numbers and booleans are allowed",
            )
    return _dumps(canonical), _dumps(texts), _dumps(nums)


def _is_decimal_text(value: str) -> bool:
    return value[:1].isdigit() and _DECIMAL_STRING_RE.fullmatch(value) is not None


def _dumps(obj: dict) -> str:
    """JSON of an already key-sorted dict (numbers as ints or orjson Fragments)."""
    return orjson.dumps(obj).decode() if obj else "{}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _show(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def utc_now() -> datetime:
    """Naive UTC now: the landing clock for the future-timestamp rule."""
    return datetime.now(UTC).replace(tzinfo=None)
