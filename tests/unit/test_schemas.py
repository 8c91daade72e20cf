"""Unit tests for the usage-event validator (dbt/docs/contract.md section 1).

Every case asserts a concrete outcome: an accepted event with its exact normalized
value, or a reject with its exact rule code. Where the code and the spec disagree,
the test asserts the SPEC.

Every test runs twice: against `schemas.validate` (one message) and against
`Batch.validate` (the vectorized fast lane plus its slow-lane fallback), which
is what the landing paths use; both must give the same outcome.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from ingestion.landing.batch import Batch
from ingestion.landing.validation import Event, Reject, validate
from tests.conftest import SCENARIOS

LANDING = datetime(2026, 11, 1, 0, 0, 0)  # naive UTC, after every timestamp used below
SCENARIO_07 = SCENARIOS / "07_ingestion_rules" / "events.jsonl"

DROP = object()  # marker: leave the field out of the message

BASE: dict[str, str] = {
    # field -> raw JSON text of its value (so number forms are under our control)
    "event_id": '"evt_0001"',
    "customer_id": '"cus_acme"',
    "metric": '"api_calls"',
    "timestamp": '"2026-10-05T10:00:00Z"',
}


def batch_validate(raw: bytes, landing_time: datetime) -> Event | Reject:
    """One message through Batch.validate, the batch path the sinks are fed by."""
    batch = Batch(source="test", landing_time=landing_time)
    batch.add(raw, "test:1")
    validated = batch.validate()
    if validated.rejects:
        (reject,) = validated.rejects
        return Reject(reject.rule, reject.detail)
    (event,) = validated.as_events()
    return event


@pytest.fixture(autouse=True, params=["message", "batch"])
def _validator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "batch":
        monkeypatch.setattr(sys.modules[__name__], "validate", batch_validate)


def msg(**fields: object) -> bytes:
    """A message: BASE with fields replaced (raw JSON text) or dropped (DROP)."""
    doc = dict(BASE)
    for name, value in fields.items():
        if value is DROP:
            doc.pop(name, None)
        else:
            assert isinstance(value, str)
            doc[name] = value
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in doc.items()) + "}").encode()


def js(value: object) -> str:
    """Raw JSON text of a Python value (non-ASCII kept as UTF-8)."""
    return json.dumps(value, ensure_ascii=False)


def accept(raw: bytes, landing: datetime = LANDING) -> Event:
    result = validate(raw, landing)
    assert isinstance(result, Event), f"expected an Event, got {result!r}"
    return result


def reject_rule(raw: bytes, landing: datetime = LANDING) -> str:
    result = validate(raw, landing)
    assert isinstance(result, Reject), f"expected a Reject, got {result!r}"
    return result.rule


# --------------------------------------------------------------------------- spec example


def test_spec_example_is_accepted_and_normalized() -> None:
    raw = (
        b'{"event_id": "evt_0001", "customer_id": "cus_acme", "metric": "api_calls",'
        b' "timestamp": "2026-10-03T12:00:00Z", "quantity": "12.5",'
        b' "properties": {"region": "eu", "user_id": "u_17"}}'
    )
    ev = accept(raw)
    assert ev.event_id == "evt_0001"
    assert ev.customer_id == "cus_acme"
    assert ev.metric == "api_calls"
    assert ev.event_ts == datetime(2026, 10, 3, 12, 0, 0)
    assert ev.event_ts.tzinfo is None
    assert ev.quantity == Decimal("12.5")
    assert json.loads(ev.properties) == {"region": "eu", "user_id": "u_17"}
    assert json.loads(ev.properties_text) == {"region": "eu", "user_id": "u_17"}
    assert json.loads(ev.properties_num) == {}
    assert isinstance(ev.content_hash, bytes) and len(ev.content_hash) == 16


# --------------------------------------------------------------------------- event_id / customer_id

ID_FIELDS = ["event_id", "customer_id"]

VALID_IDS = [
    "a",
    "Z",
    "0",
    "evt_0001",
    "A-z_0.9:x",
    "_.:-",
    "x" * 128,
]

INVALID_IDS = [
    pytest.param("x" * 129, id="129-chars"),
    pytest.param("", id="empty"),
    pytest.param("evt 1", id="space"),
    pytest.param(" evt1", id="leading-space"),
    pytest.param("evt1\n", id="trailing-newline"),
    pytest.param("évt", id="unicode-letter-e-acute"),
    pytest.param("evtß", id="unicode-letter-sharp-s"),
    pytest.param("evt١", id="unicode-digit"),
    pytest.param("evt/1", id="slash"),
    pytest.param("evt#1", id="hash"),
    pytest.param(123, id="integer"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(["evt"], id="array"),
    pytest.param({"id": "evt"}, id="object"),
]


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("value", VALID_IDS, ids=lambda v: f"len{len(v)}-{v[:12]}")
def test_id_valid(field: str, value: str) -> None:
    ev = accept(msg(**{field: js(value)}))
    assert getattr(ev, field) == value


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("value", INVALID_IDS)
def test_id_invalid(field: str, value: object) -> None:
    assert reject_rule(msg(**{field: js(value)})) == f"{field}.invalid"


@pytest.mark.parametrize("field", ID_FIELDS)
def test_id_unicode_escape_is_rejected(field: str) -> None:
    # the same unicode letter written as a JSON \u escape
    assert reject_rule(msg(**{field: '"\\u00e9vt"'})) == f"{field}.invalid"


@pytest.mark.parametrize("field", ID_FIELDS)
def test_id_missing(field: str) -> None:
    assert reject_rule(msg(**{field: DROP})) == f"{field}.missing"


@pytest.mark.parametrize("field", ID_FIELDS)
def test_id_null(field: str) -> None:
    assert reject_rule(msg(**{field: "null"})) == f"{field}.null"


# --------------------------------------------------------------------------- metric


@pytest.mark.parametrize(
    "value",
    ["a", "api_calls", "a1", "a_", "a__b_9", "a" + "b" * 63, "z" + "0" * 63],
    ids=lambda v: f"len{len(v)}-{v[:10]}",
)
def test_metric_valid(value: str) -> None:
    assert accept(msg(metric=js(value))).metric == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a" + "b" * 64, id="65-chars"),
        pytest.param("", id="empty"),
        pytest.param("Api_calls", id="leading-uppercase"),
        pytest.param("api_Calls", id="inner-uppercase"),
        pytest.param("API-Calls", id="scenario-form"),
        pytest.param("1api", id="leading-digit"),
        pytest.param("_api", id="leading-underscore"),
        pytest.param("api-calls", id="hyphen"),
        pytest.param("api.calls", id="dot"),
        pytest.param("api calls", id="space"),
        pytest.param("api_calls\n", id="trailing-newline"),
        pytest.param("ápi", id="unicode-letter"),
        pytest.param(5, id="number"),
        pytest.param(True, id="bool"),
        pytest.param(["api"], id="array"),
        pytest.param({"m": "api"}, id="object"),
    ],
)
def test_metric_invalid(value: object) -> None:
    assert reject_rule(msg(metric=js(value))) == "metric.invalid"


def test_metric_missing() -> None:
    assert reject_rule(msg(metric=DROP)) == "metric.missing"


def test_metric_null() -> None:
    assert reject_rule(msg(metric="null")) == "metric.null"


# --------------------------------------------------------------------------- timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-05T10:00:00Z", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05T10:00:00z", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05t10:00:00Z", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05t10:00:00z", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05T12:00:00+02:00", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05T04:30:00-05:30", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05T10:00:00+00:00", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05T10:00:00-00:00", datetime(2026, 10, 5, 10, 0, 0)),
        ("2026-10-05T01:00:00+02:00", datetime(2026, 10, 4, 23, 0, 0)),  # crosses the date
        ("2026-10-31T22:00:00-05:00", datetime(2026, 11, 1, 3, 0, 0)),
        ("2026-10-05T10:00:00+23:59", datetime(2026, 10, 4, 10, 1, 0)),
        ("2026-10-05T10:00:00.5Z", datetime(2026, 10, 5, 10, 0, 0, 500000)),
        ("2026-10-05T10:00:00.123456Z", datetime(2026, 10, 5, 10, 0, 0, 123456)),
        ("2026-10-05T10:00:00.1234569Z", datetime(2026, 10, 5, 10, 0, 0, 123456)),  # truncated
        ("2026-10-05T10:00:00.9999999Z", datetime(2026, 10, 5, 10, 0, 0, 999999)),  # not rounded
        ("2026-10-05T10:00:00.000000999Z", datetime(2026, 10, 5, 10, 0, 0, 0)),
        ("2026-10-05T12:00:00.1234569+02:00", datetime(2026, 10, 5, 10, 0, 0, 123456)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, 0, 0, 0)),  # leap day
    ],
)
def test_timestamp_valid(text: str, expected: datetime) -> None:
    ev = accept(msg(timestamp=js(text)), landing=LANDING + timedelta(days=1))
    assert ev.event_ts == expected
    assert ev.event_ts.tzinfo is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-10-05T10:00Z", id="no-seconds"),
        pytest.param("2026-10-05T10:00:00", id="no-offset"),
        pytest.param("2026-10-05T10:00:00.5", id="fraction-no-offset"),
        pytest.param("2026-10-05 10:00:00Z", id="space-for-T"),
        pytest.param("2026-10-05_10:00:00Z", id="underscore-for-T"),
        pytest.param("2026-02-30T10:00:00Z", id="feb-30"),
        pytest.param("2026-02-29T10:00:00Z", id="feb-29-non-leap"),
        pytest.param("2026-13-01T10:00:00Z", id="month-13"),
        pytest.param("2026-00-01T10:00:00Z", id="month-0"),
        pytest.param("2026-10-00T10:00:00Z", id="day-0"),
        pytest.param("2026-10-32T10:00:00Z", id="day-32"),
        pytest.param("2026-10-05T24:00:00Z", id="hour-24"),
        pytest.param("2026-10-05T10:60:00Z", id="minute-60"),
        pytest.param("2026-10-05T10:00:00+24:00", id="offset-plus-24"),
        pytest.param("2026-10-05T10:00:00-24:00", id="offset-minus-24"),
        pytest.param("2026-10-05T10:00:00+02:60", id="offset-minute-60"),
        pytest.param("2026-10-05T10:00:00+0200", id="offset-no-colon"),
        pytest.param("2026-10-05T10:00:00+02", id="offset-hours-only"),
        pytest.param("2026-10-05T10:00:00 Z", id="space-before-Z"),
        pytest.param("2026-10-05T10:00:00.Z", id="empty-fraction"),
        pytest.param("2026-10-05T10:00:00,5Z", id="comma-fraction"),
        pytest.param("2026-10-05T10:00:00ZZ", id="double-Z"),
        pytest.param("2026-10-05T10:00:00UTC", id="UTC-word"),
        pytest.param("2026-10-5T10:00:00Z", id="one-digit-day"),
        pytest.param("26-10-05T10:00:00Z", id="two-digit-year"),
        pytest.param("20261005T100000Z", id="basic-format"),
        pytest.param("2026-10-05", id="date-only"),
        pytest.param(" 2026-10-05T10:00:00Z", id="leading-space"),
        pytest.param("2026-10-05T10:00:00Z\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param("1759658400", id="epoch-string"),
        # RFC 3339 DIGIT is ASCII %x30-39; Arabic-Indic digits are not digits here
        pytest.param("٢٠٢٦-١٠-٠٥T١٠:٠٠:٠٠Z", id="unicode-digits"),
        pytest.param(1759658400, id="epoch-number"),
        pytest.param(True, id="bool"),
        pytest.param(["2026-10-05T10:00:00Z"], id="array"),
        pytest.param({"ts": "2026-10-05T10:00:00Z"}, id="object"),
    ],
)
def test_timestamp_invalid(value: object) -> None:
    assert reject_rule(msg(timestamp=js(value))) == "timestamp.invalid"


def test_timestamp_missing() -> None:
    assert reject_rule(msg(timestamp=DROP)) == "timestamp.missing"


def test_timestamp_null() -> None:
    assert reject_rule(msg(timestamp="null")) == "timestamp.null"


FUTURE_LANDING = datetime(2026, 10, 5, 10, 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-05T10:00:00Z", datetime(2026, 10, 5, 10, 0, 0)),  # = landing
        ("2026-10-05T10:04:59.999999Z", datetime(2026, 10, 5, 10, 4, 59, 999999)),
        ("2026-10-05T10:05:00Z", datetime(2026, 10, 5, 10, 5, 0)),  # exactly 5 minutes
        ("2026-10-05T10:05:00.0000009Z", datetime(2026, 10, 5, 10, 5, 0)),  # truncates to 5 min
        ("2026-10-05T12:05:00+02:00", datetime(2026, 10, 5, 10, 5, 0)),  # offset, 5 min in UTC
        ("2026-10-05T05:05:00-05:00", datetime(2026, 10, 5, 10, 5, 0)),
        ("2020-01-01T00:00:00Z", datetime(2020, 1, 1, 0, 0, 0)),  # far past is fine (late)
    ],
)
def test_timestamp_future_tolerance_accepts(text: str, expected: datetime) -> None:
    assert accept(msg(timestamp=js(text)), landing=FUTURE_LANDING).event_ts == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-05T10:05:00.000001Z",  # 5 minutes + 1 microsecond
        "2026-10-05T10:05:01Z",
        "2026-10-05T10:04:00-02:00",  # 12:04 UTC: the offset is applied before comparing
        "2026-10-05T12:05:00.000001+02:00",
        "2099-01-01T00:00:00Z",
    ],
)
def test_timestamp_future_rejected(text: str) -> None:
    assert reject_rule(msg(timestamp=js(text)), landing=FUTURE_LANDING) == "timestamp.future"


# --------------------------------------------------------------------------- quantity


def test_quantity_absent_defaults_to_one() -> None:
    ev = accept(msg())
    assert ev.quantity == Decimal(1)
    assert isinstance(ev.quantity, Decimal)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # JSON integers
        ("0", "0"),
        ("1", "1"),
        ("100", "100"),
        ("999999999999", "999999999999"),
        ("-0", "0"),
        # JSON numbers with a fraction: exact, never through a float
        ("0.1", "0.1"),
        ("12.5", "12.5"),
        ("0.000000001", "0.000000001"),
        ("99999999999.123456789", "99999999999.123456789"),
        # 21 significant digits, 123456789012 < 10^12 and 9 fractional digits: valid, exact
        ("123456789012.123456789", "123456789012.123456789"),
        ("999999999999.999999999", "999999999999.999999999"),
        ("1.0000000000", "1"),  # trailing zeros dropped: 0 fractional digits
        ("0.1000000000000", "0.1"),
        ("1.10", "1.1"),
        # JSON numbers with an exponent
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1e+3", "1000"),
        ("2.5e1", "25"),
        ("1e-9", "0.000000001"),
        ("12345e-4", "1.2345"),
        ("9.99999999999e11", "999999999999"),
        # decimal strings
        ('"12.5"', "12.5"),
        ('"0"', "0"),
        ('"7"', "7"),
        ('"007"', "7"),
        ('"12.50"', "12.5"),
        ('"0.1"', "0.1"),
        ('"999999999999.999999999"', "999999999999.999999999"),
        ('"99999999999.123456789"', "99999999999.123456789"),
        ('"1.0000000000"', "1"),
        ('"0.000000001"', "0.000000001"),
    ],
)
def test_quantity_valid(raw: str, expected: str) -> None:
    ev = accept(msg(quantity=raw))
    assert isinstance(ev.quantity, Decimal)
    assert ev.quantity == Decimal(expected)


def test_quantity_fraction_is_not_a_float() -> None:
    # a float 0.1 would be 0.1000000000000000055511151231257827...
    ev = accept(msg(quantity="0.1"))
    assert ev.quantity == Decimal("0.1")
    assert ev.quantity.as_tuple().digits == (1,)


def test_quantity_null() -> None:
    assert reject_rule(msg(quantity="null")) == "quantity.null"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('"+1"', id="str-plus-sign"),
        pytest.param('"-1"', id="str-minus-sign"),
        pytest.param('"1e3"', id="str-exponent"),
        pytest.param('"1E3"', id="str-exponent-upper"),
        pytest.param('" 1"', id="str-leading-space"),
        pytest.param('"1 "', id="str-trailing-space"),
        pytest.param('"1 000"', id="str-inner-space"),
        pytest.param('".5"', id="str-no-integer-part"),
        pytest.param('"5."', id="str-no-fraction-digits"),
        pytest.param('""', id="str-empty"),
        pytest.param('"abc"', id="str-letters"),
        pytest.param('"1,5"', id="str-comma"),
        pytest.param('"1.2.3"', id="str-two-dots"),
        pytest.param('"0x10"', id="str-hex"),
        pytest.param('"NaN"', id="str-nan"),
        pytest.param('"Infinity"', id="str-infinity"),
        pytest.param('"١٢"', id="str-unicode-digits"),
        pytest.param('"1\\n"', id="str-trailing-newline"),
        pytest.param("true", id="true"),
        pytest.param("false", id="false"),
        pytest.param("[1]", id="array"),
        pytest.param("[]", id="empty-array"),
        pytest.param('{"value": 1}', id="object"),
    ],
)
def test_quantity_wrong_type(raw: str) -> None:
    assert reject_rule(msg(quantity=raw)) == "quantity.type"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("-1", id="negative-int"),
        pytest.param("-0.5", id="negative-fraction"),
        pytest.param("-1e3", id="negative-exponent"),
        pytest.param("1000000000000", id="1e12-int"),
        pytest.param("1000000000000.0", id="1e12-fraction"),
        pytest.param("1e12", id="1e12-exponent"),
        pytest.param('"1000000000000"', id="1e12-string"),
        pytest.param("1234567890123.123456789", id="22-significant-digits"),
        pytest.param("1000000000000000000000", id="beyond-64-bits"),
        pytest.param("18446744073709551616", id="2-pow-64"),
        pytest.param('"100000000000000000000000000000000"', id="huge-string"),
        # valid JSON numbers beyond a double: still quantity.range, not "not JSON"
        pytest.param("1" + "0" * 400, id="400-digit-integer"),
        pytest.param("1e400", id="exponent-beyond-double"),
    ],
)
def test_quantity_out_of_range(raw: str) -> None:
    assert reject_rule(msg(quantity=raw)) == "quantity.range"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("0.0000000001", id="10-fraction-digits-number"),
        pytest.param('"0.0000000001"', id="10-fraction-digits-string"),
        pytest.param("1.1234567891", id="10-fraction-digits-nonzero"),
        pytest.param("1e-10", id="exponent-10-fraction-digits"),
        pytest.param("1e-400", id="tiny-exponent"),
        pytest.param('"999999999999.9999999999"', id="10-fraction-digits-near-max"),
        pytest.param("999999999999.9999999995", id="10-fraction-digits-near-max-number"),
        # more than 28 significant digits (beyond the default Decimal context):
        # at most 9 fractional digits still applies, the value must not be rounded
        pytest.param('"1.00000000000000000000000000001"', id="30-digits-string"),
        pytest.param("1.00000000000000000000000000001", id="30-digits-number"),
        pytest.param('"999999999999.99999999999999999"', id="29-digits-would-round-to-1e12"),
    ],
)
def test_quantity_too_precise(raw: str) -> None:
    assert reject_rule(msg(quantity=raw)) == "quantity.precision"


# --------------------------------------------------------------------------- properties


def test_properties_absent() -> None:
    ev = accept(msg())
    assert json.loads(ev.properties) == {}
    assert json.loads(ev.properties_text) == {}
    assert json.loads(ev.properties_num) == {}


def test_properties_empty_object() -> None:
    ev = accept(msg(properties="{}"))
    assert json.loads(ev.properties) == {}
    assert json.loads(ev.properties_text) == {}


def test_properties_null() -> None:
    assert reject_rule(msg(properties="null")) == "properties.null"


@pytest.mark.parametrize(
    "raw",
    ['"eu"', "1", "1.5", "true", "false", "[]", '[{"a": 1}]', '["a"]'],
)
def test_properties_not_an_object(raw: str) -> None:
    assert reject_rule(msg(properties=raw)) == "properties.type"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('{"a": {"b": 1}}', id="nested-object"),
        pytest.param('{"a": {}}', id="empty-object"),
        pytest.param('{"a": [1, 2]}', id="array"),
        pytest.param('{"a": []}', id="empty-array"),
        pytest.param('{"a": null}', id="null-value"),
        pytest.param('{"ok": "x", "a": null}', id="null-after-valid"),
        pytest.param('{"ok": 1.5, "a": [1]}', id="array-after-float"),
    ],
)
def test_properties_bad_value(raw: str) -> None:
    assert reject_rule(msg(properties=raw)) == "properties.value_type"


PROPERTY_FORMS: list[tuple[str, str, str | None]] = [
    # strings: text as-is; num only for digit strings (the forms quantity accepts)
    ('"eu"', "eu", None),
    ('""', "", None),
    ('"héllo"', "héllo", None),
    ('"7"', "7", "7"),
    ('"12.50"', "12.50", "12.5"),
    ('"007"', "007", "7"),
    ('"1e2"', "1e2", None),
    ('"-1"', "-1", None),
    ('"+1"', "+1", None),
    ('" 7"', " 7", None),
    ('".5"', ".5", None),
    ('"true"', "true", None),
    # numbers: plain decimal, no exponent, no trailing fractional zeros
    ("7", "7", "7"),
    ("0", "0", "0"),
    ("1.10", "1.1", "1.1"),
    ("1e2", "100", "100"),
    ("1E2", "100", "100"),
    ("2.0", "2", "2"),
    ("0.0", "0", "0"),
    ("-3.50", "-3.5", "-3.5"),
    ("1e-7", "0.0000001", "0.0000001"),
    ("1.5e-3", "0.0015", "0.0015"),
    ("123456789.123456789", "123456789.123456789", "123456789.123456789"),
    ("1000000000000000000000", "1000000000000000000000", "1000000000000000000000"),
    # booleans
    ("true", "true", None),
    ("false", "false", None),
    # more than 28 significant digits: still exact (no Decimal-context rounding)
    (
        "12345678901234567890123456789012",
        "12345678901234567890123456789012",
        "12345678901234567890123456789012",
    ),
    (
        "1.00000000000000000000000000001",
        "1.00000000000000000000000000001",
        "1.00000000000000000000000000001",
    ),
    (
        '"12345678901234567890123456789012"',
        "12345678901234567890123456789012",
        "12345678901234567890123456789012",
    ),
    # a valid JSON number beyond a double is still a number; past 32 characters of plain
    # decimal its text is the exact scientific form (bounded by what was sent)
    ("1e400", "1E+400", "1E+400"),
    ("1e31", "1" + "0" * 31, "1" + "0" * 31),
    ("-1.50e-31", "-1.5E-31", "-1.5E-31"),
    ('"' + "1" * 40 + '"', "1" * 40, "1.111111111111111111111111111111111111111E+39"),
]


@pytest.mark.parametrize(
    ("raw_value", "text", "num"),
    [pytest.param(*case, id=f"{case[0][:24]}") for case in PROPERTY_FORMS],
)
def test_properties_canonical_forms(raw_value: str, text: str, num: str | None) -> None:
    ev = accept(msg(properties='{"x": ' + raw_value + "}"))
    assert json.loads(ev.properties_text) == {"x": text}
    assert json.loads(ev.properties_num) == ({} if num is None else {"x": num})


@pytest.mark.parametrize("exponent", ["-10000000", "+10000000"])
def test_property_number_with_a_huge_exponent_stays_small(exponent: str) -> None:
    """A 100-byte event used to be stored as 10 MB (1e-10000000) or ~3 GB (1e-999999999) of
    plain decimal, three times over."""
    raw = msg(properties='{"x": 1e' + exponent + ', "y": 2.50E' + exponent + "}")
    ev = accept(raw)
    for stored in (ev.properties, ev.properties_text, ev.properties_num):
        assert len(stored) < 2 * len(raw)
    assert json.loads(ev.properties_text) == {"x": f"1E{exponent}", "y": f"2.5E{exponent}"}


def test_properties_mixed_object() -> None:
    ev = accept(
        msg(
            properties='{"region": "eu", "n": 1.10, "big": 1e2, "flag": true, "off": false,'
            ' "sid": "42", "f": 2.0}'
        )
    )
    assert json.loads(ev.properties_text) == {
        "region": "eu",
        "n": "1.1",
        "big": "100",
        "flag": "true",
        "off": "false",
        "sid": "42",
        "f": "2",
    }
    assert json.loads(ev.properties_num) == {"n": "1.1", "big": "100", "sid": "42", "f": "2"}
    # the canonical JSON keeps the value types (a number stays a number)
    assert json.loads(ev.properties, parse_float=Decimal) == {
        "big": 100,
        "f": 2,
        "flag": True,
        "n": Decimal("1.1"),
        "off": False,
        "region": "eu",
        "sid": "42",
    }


def test_properties_all_strings() -> None:
    ev = accept(msg(properties='{"z": "1", "a": "x", "m": "12.50", "b": "-2", "c": "1e2"}'))
    expected = {"a": "x", "b": "-2", "c": "1e2", "m": "12.50", "z": "1"}
    assert json.loads(ev.properties) == expected
    assert list(json.loads(ev.properties)) == ["a", "b", "c", "m", "z"]
    assert json.loads(ev.properties_text) == expected
    assert json.loads(ev.properties_num) == {"m": "12.5", "z": "1"}
    assert list(json.loads(ev.properties_num)) == ["m", "z"]


def test_properties_canonical_key_order() -> None:
    a = accept(msg(properties='{"b": 1, "a": "x", "c": true}'))
    b = accept(msg(properties='{"c": true, "a": "x", "b": 1}'))
    assert a.properties == b.properties
    assert list(json.loads(a.properties)) == ["a", "b", "c"]
    assert a.properties_text == b.properties_text


# --------------------------------------------------------------------------- message


def _padded(total: int) -> bytes:
    """A valid message of exactly `total` bytes (padding in an unknown field)."""
    head = msg(pad='""')
    filler = total - len(head)
    assert filler >= 0
    raw = msg(pad=js("p" * filler))
    assert len(raw) == total
    return raw


def test_message_exactly_16_kib_accepted() -> None:
    ev = accept(_padded(16384))
    assert ev.event_id == "evt_0001"


def test_message_exactly_16_kib_with_multibyte_chars() -> None:
    # the limit is in bytes: 'é' is two bytes in UTF-8
    head = msg(pad='""')
    n = (16384 - len(head)) // 2
    raw = msg(pad=js("é" * n))
    raw = raw if len(raw) == 16384 else msg(pad=js("é" * n + "p"))
    assert len(raw) == 16384
    assert accept(raw).event_id == "evt_0001"


@pytest.mark.parametrize("size", [16385, 16386, 100_000])
def test_message_too_large(size: int) -> None:
    assert reject_rule(_padded(size)) == "message.too_large"


def test_message_too_large_in_properties() -> None:
    raw = msg(properties='{"blob": ' + js("x" * 16384) + "}")
    assert reject_rule(raw) == "message.too_large"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(msg(pad='"X"').replace(b'"X"', b'"\xff"'), id="0xff-byte"),
        pytest.param(msg(properties='{"city": "Z"}').replace(b'"Z"', b'"Z\xfcrich"'), id="latin1"),
        pytest.param(msg().replace(b"evt_0001", b"evt_\xed\xa0\x80"), id="encoded-surrogate"),
        pytest.param(msg().replace(b"evt_0001", b"evt_\xc0\xaf"), id="overlong"),
        pytest.param(msg()[:-1] + b"\x80}", id="stray-continuation"),
        pytest.param(b"\xff\xfe{}", id="utf16-bom"),
    ],
)
def test_message_not_utf8(raw: bytes) -> None:
    assert reject_rule(raw) == "message.not_utf8"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   ", id="whitespace"),
        pytest.param(b"not json", id="text"),
        pytest.param(b"{", id="unterminated"),
        pytest.param(msg()[:-1], id="truncated"),
        pytest.param(msg()[:-1] + b",}", id="trailing-comma"),
        pytest.param(b"{'event_id': 'evt_1'}", id="single-quotes"),
        pytest.param(msg() + msg(), id="two-objects"),
        pytest.param(msg(quantity="NaN"), id="nan"),
        pytest.param(msg(quantity="Infinity"), id="infinity"),
        pytest.param(msg(quantity="01"), id="leading-zero-number"),
        pytest.param(msg(quantity=".5"), id="bare-fraction"),
        pytest.param(msg(quantity="+1"), id="plus-number"),
    ],
)
def test_message_not_json(raw: bytes) -> None:
    assert reject_rule(raw) == "message.not_json"


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2, 3]", b"[]", b"[" + msg() + b"]", b'"evt_0001"', b"42", b"1.5", b"true", b"null"],
)
def test_message_not_object(raw: bytes) -> None:
    assert reject_rule(raw) == "message.not_object"


def test_unknown_top_level_fields_ignored() -> None:
    plain = accept(msg(quantity="3", properties='{"a": "b"}'))
    extra = accept(
        msg(
            quantity="3",
            properties='{"a": "b"}',
            source='"sdk"',
            Quantity='"not a number"',
            nested='{"x": [1, null, {"y": 1.5}]}',
            nothing="null",
        )
    )
    assert extra.quantity == Decimal(3)
    assert json.loads(extra.properties_text) == {"a": "b"}
    assert extra == plain


# --------------------------------------------------------------------------- content hash


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({}, {}, id="identical"),
        pytest.param(
            {"timestamp": '"2026-10-05T10:00:00Z"'},
            {"timestamp": '"2026-10-05T12:00:00+02:00"'},
            id="ts-Z-vs-offset",
        ),
        pytest.param(
            {"timestamp": '"2026-10-05T10:00:00Z"'},
            {"timestamp": '"2026-10-05T04:30:00-05:30"'},
            id="ts-Z-vs-negative-offset",
        ),
        pytest.param(
            {"timestamp": '"2026-10-05T10:00:00Z"'},
            {"timestamp": '"2026-10-05t10:00:00.000z"'},
            id="ts-case-and-zero-fraction",
        ),
        pytest.param(
            {"timestamp": '"2026-10-05T10:00:00.123456Z"'},
            {"timestamp": '"2026-10-05T10:00:00.1234569Z"'},
            id="ts-truncated-fraction",
        ),
        pytest.param({"quantity": '"12.50"'}, {"quantity": "12.5"}, id="qty-string-vs-number"),
        pytest.param({"quantity": DROP}, {"quantity": "1"}, id="qty-absent-vs-1"),
        pytest.param({"quantity": DROP}, {"quantity": '"1.000"'}, id="qty-absent-vs-str-1.000"),
        pytest.param({"quantity": "1e3"}, {"quantity": "1000"}, id="qty-exponent"),
        pytest.param({"quantity": "1000.0"}, {"quantity": '"1000"'}, id="qty-trailing-zero"),
        pytest.param({"properties": '{"x": 1}'}, {"properties": '{"x": 1.0}'}, id="prop-1-vs-1.0"),
        pytest.param({"properties": '{"x": 100}'}, {"properties": '{"x": 1e2}'}, id="prop-1e2"),
        pytest.param(
            {"properties": '{"x": 1.10}'}, {"properties": '{"x": 1.1}'}, id="prop-1.10-vs-1.1"
        ),
        pytest.param(
            {"properties": '{"a": 1, "b": "x", "c": true}'},
            {"properties": '{"c": true, "b": "x", "a": 1}'},
            id="prop-key-order",
        ),
        pytest.param({}, {"extra": '"field"', "other": "[1, 2]"}, id="unknown-fields"),
        pytest.param(
            {"quantity": "5", "properties": '{"a": 1}'},
            {"properties": '{"a": 1}', "quantity": "5", "zzz": "null"},
            id="field-order-and-unknown",
        ),
    ],
)
def test_hash_equal_by_value(left: dict, right: dict) -> None:
    a = accept(msg(**left))
    b = accept(msg(**right))
    assert a.content_hash == b.content_hash
    assert len(a.content_hash) == 16


def test_hash_equal_regardless_of_whitespace() -> None:
    compact = (
        b'{"event_id":"e1","customer_id":"c1","metric":"m","timestamp":"2026-10-05T10:00:00Z"}'
    )
    spaced = (
        b'{ "metric" : "m" ,\n "timestamp" : "2026-10-05T10:00:00Z", "customer_id": "c1",'
        b'  "event_id":"e1" }'
    )
    assert accept(compact).content_hash == accept(spaced).content_hash


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param({"quantity": "1"}, {"quantity": "2"}, id="qty-1-vs-2"),
        pytest.param({"quantity": DROP}, {"quantity": "2"}, id="qty-absent-vs-2"),
        pytest.param({"quantity": "12.5"}, {"quantity": '"12.51"'}, id="qty-12.5-vs-12.51"),
        pytest.param({"quantity": "0.000000001"}, {"quantity": "0.000000002"}, id="qty-last-digit"),
        pytest.param({"quantity": "0"}, {"quantity": DROP}, id="qty-0-vs-absent"),
        pytest.param(
            {"timestamp": '"2026-10-05T10:00:00Z"'},
            {"timestamp": '"2026-10-05T10:00:00.000001Z"'},
            id="ts-1-microsecond",
        ),
        pytest.param(
            {"timestamp": '"2026-10-05T10:00:00Z"'},
            {"timestamp": '"2026-10-05T10:00:00+02:00"'},
            id="ts-same-wall-clock-other-offset",
        ),
        pytest.param({"event_id": '"evt_a"'}, {"event_id": '"evt_b"'}, id="event-id"),
        pytest.param({"customer_id": '"cus_a"'}, {"customer_id": '"cus_b"'}, id="customer"),
        pytest.param({"metric": '"api_calls"'}, {"metric": '"api_call"'}, id="metric"),
        pytest.param({"properties": '{"x": 1}'}, {"properties": '{"x": "1"}'}, id="1-vs-str-1"),
        pytest.param({"properties": '{"x": 1}'}, {"properties": '{"x": true}'}, id="1-vs-true"),
        pytest.param(
            {"properties": '{"x": "1"}'}, {"properties": '{"x": true}'}, id="str-1-vs-true"
        ),
        pytest.param(
            {"properties": '{"x": "true"}'}, {"properties": '{"x": true}'}, id="str-true-vs-true"
        ),
        pytest.param({"properties": '{"x": 0}'}, {"properties": '{"x": false}'}, id="0-vs-false"),
        pytest.param(
            {"properties": '{"x": "1.0"}'}, {"properties": '{"x": "1"}'}, id="str-1.0-vs-str-1"
        ),
        pytest.param({"properties": '{"x": 1}'}, {"properties": '{"x": 2}'}, id="prop-value"),
        pytest.param({"properties": '{"x": 1}'}, {"properties": '{"y": 1}'}, id="prop-key"),
        pytest.param({"properties": '{"x": 1}'}, {"properties": "{}"}, id="prop-vs-empty"),
        pytest.param(
            {"properties": '{"x": "a"}'},
            {"properties": '{"x": "a", "y": "b"}'},
            id="extra-property",
        ),
        pytest.param(
            {"properties": '{"x": 12345678901234567890123456789012}'},
            {"properties": '{"x": 12345678901234567890123456789013}'},
            id="prop-big-numbers-differ",
        ),
        pytest.param(
            {"properties": '{"x": 1}'},
            {"properties": '{"x": 1.00000000000000000000000000001}'},
            id="prop-1-vs-1-plus-epsilon",
        ),
    ],
)
def test_hash_differs(left: dict, right: dict) -> None:
    a = accept(msg(**left))
    b = accept(msg(**right))
    assert a.content_hash != b.content_hash


# --------------------------------------------------------------------------- scenario 07

# expected outcome of each non-blank line: None = valid, else the rule code
SCENARIO_07_EXPECTED: list[str | None] = [
    None,  # 1 evt_00001
    None,  # 2 evt_00002
    None,  # 3 evt_00003 (customer without subscription: valid, unbilled later)
    None,  # 4 evt_00004 (metric no charge uses: valid, unbilled later)
    None,  # 5 evt_00001 again, same content (a duplicate, but valid)
    None,  # 6 evt_00002 again, other quantity (a conflict, but valid)
    "metric.invalid",  # 7  "API-Calls"
    "quantity.range",  # 8  -1
    "timestamp.missing",  # 9
    "timestamp.invalid",  # 10 no offset
    "timestamp.future",  # 11 2099
    "quantity.type",  # 12 "abc"
    "event_id.invalid",  # 13 "evt b7"
    "properties.value_type",  # 14 nested object
    "quantity.precision",  # 15 "0.0000000001"
    "message.not_json",  # 16 truncated object
    "message.not_object",  # 17 [1, 2, 3]
    "quantity.type",  # 18 true
]


def _scenario_lines() -> list[bytes]:
    lines = []
    with SCENARIO_07.open("rb") as fh:
        for line in fh:
            line = line.rstrip(b"\n")
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            lines.append(line)
    return lines


def test_scenario_07_twelve_rejects_first_six_valid() -> None:
    lines = _scenario_lines()
    assert len(lines) == 18
    results = [validate(line, LANDING) for line in lines]
    assert all(isinstance(r, Event) for r in results[:6]), results[:6]
    assert sum(isinstance(r, Reject) for r in results) == 12
    assert all(isinstance(r, Reject) for r in results[6:])


@pytest.mark.parametrize(("lineno", "expected"), list(enumerate(SCENARIO_07_EXPECTED, start=1)))
def test_scenario_07_line(lineno: int, expected: str | None) -> None:
    line = _scenario_lines()[lineno - 1]
    result = validate(line, LANDING)
    if expected is None:
        assert isinstance(result, Event), result
    else:
        assert isinstance(result, Reject), result
        assert result.rule == expected


def test_scenario_07_duplicate_and_conflict() -> None:
    ev = [accept(line) for line in _scenario_lines()[:6]]
    assert ev[0].event_id == ev[4].event_id == "evt_00001"
    assert ev[0].content_hash == ev[4].content_hash  # duplicate
    assert ev[1].event_id == ev[5].event_id == "evt_00002"
    assert ev[1].content_hash != ev[5].content_hash  # conflict
    assert (ev[1].quantity, ev[5].quantity) == (Decimal(50), Decimal(5000))
    assert [e.quantity for e in ev[:4]] == [Decimal(100), Decimal(50), Decimal(70), Decimal(70)]


@pytest.mark.parametrize(
    "properties",
    [{"p": "a\u0000b"}, {"a\u0000": "x"}, {"ok": "x", "p": "\u0000"}],
)
def test_property_with_nul_character_rejected(properties: dict) -> None:
    """U+0000 cannot be stored by PostgreSQL text/jsonb: rejected on every backend alike."""
    line = json.dumps(
        {
            "event_id": "e1",
            "customer_id": "c1",
            "metric": "m",
            "timestamp": "2026-10-01T00:00:00Z",
            "properties": properties,
        }
    ).encode()
    result = validate(line, datetime(2026, 11, 1))
    assert isinstance(result, Reject)
    assert result.rule == "properties.nul_character"
