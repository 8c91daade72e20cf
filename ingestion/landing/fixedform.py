"""The fixed-form lane: events in the shape producers write, decoded without a JSON parser.

Why: almost every usage event is written by a serializer in one fixed shape,
`{"event_id": "…", "customer_id": "…", "metric": "…", "timestamp": "…"
[, "quantity": N][, "properties": {…}]}`. For such a line a full JSON parse
is wasted work: one regular expression (matched, not captured: RE2's DFA
runs at memory speed) proves the shape and every field rule at once, and
then every field sits between known double quotes. Field values are cut out
of the batch's joined buffer with numpy offset arithmetic; timestamps become
microseconds with integer arithmetic; only the distinct properties objects
are parsed (orjson, as `schemas.validate` does).

The shape proves (so these lines need no other check):
- ids and metric: the character classes and lengths of section 1, no escapes,
  so no double quote inside them: value k lies between quotes 4k+2 and 4k+3;
- timestamp: `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` with hours, minutes,
  seconds (no leap second) and offsets in range; the day of the month is
  checked here (numpy), the future and year-1000 limits too;
- quantity: a JSON number without sign or exponent, or a decimal string, with
  at most 12 integer and 9 fractional digits;
- properties: one flat object without escapes or brackets; it is accepted only
  when orjson reads it as an object whose values are allowed and not floats
  (`fastlane._canonical_props`, shared with the DuckDB lane).
Any other line goes on to the DuckDB lane, then to `schemas.validate`; the
contract (tests/unit/test_fastlane.py): a line accepted here is accepted by
`schemas.validate` with an identical Event and content hash.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_ID = r'"[A-Za-z0-9_.:\-]{1,128}"'
_SP = r"[ \t\r\n]*"  # JSON whitespace between tokens
_TS = (
    r'"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])'
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r'(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"'
)

# a JSON number without exponent or sign, or a decimal string; at most 12 integer
# and 9 fractional digits (so below 10^12 and within the precision rule)
_QUANTITY = r'(?:(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,9})?|"[0-9]{1,12}(?:\.[0-9]{1,9})?")'


def _member(key: str, value: str) -> str:
    return f'"{key}"{_SP}:{_SP}{value}'


FIXED_FORM = (
    r"^\{" + _SP
    + _member("event_id", _ID) + _SP + "," + _SP
    + _member("customer_id", _ID) + _SP + "," + _SP
    + _member("metric", r'"[a-z][a-z0-9_]{0,63}"') + _SP + "," + _SP
    + _member("timestamp", _TS)
    + "(?:" + _SP + "," + _SP + _member("quantity", _QUANTITY) + ")?"
    + "(?:" + _SP + "," + _SP + _member("properties", r"\{[^{}\[\]\\]*\}") + ")?"
    + _SP + r"\}$"
)  # fmt: skip

MAX_LINE_BYTES = 2048  # well under the 16 KiB rule; longer lines take the other lanes
_QUOTE = ord('"')
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
_YEAR_1000_US = -30_610_224_000_000_000  # 1000-01-01 in Unix microseconds
_EPOCH = datetime(1970, 1, 1)


def fixed_form_mask(texts: pa.Array) -> np.ndarray:
    """Which lines have the fixed form and fewer than MAX_LINE_BYTES bytes (lines
    that are null, i.e. not UTF-8, do not)."""
    matched = pc.and_(pc.match_substring_regex(texts, FIXED_FORM),
                      pc.less(pc.binary_length(texts), MAX_LINE_BYTES))  # fmt: skip
    return pc.fill_null(matched, False).to_numpy(zero_copy_only=False)


def decode(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, limit: datetime
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Decode the fixed-form lines `rows` (line i is data[starts[i]:ends[i]]).

    Returns their columns (ids, metric, event_ts, quantity, the properties
    object's text or null) and a mask of the rows to keep: a row is dropped
    (left to the next lane) when its date does not exist or its instant is
    before year 1000 or after `limit`.
    """
    quotes = np.flatnonzero(data == _QUOTE)
    first = np.searchsorted(quotes, starts[rows])
    line_end = ends[rows]
    buffer = pa.py_buffer(data.data)

    def quote(k: np.ndarray | int) -> np.ndarray:  # position of each row's quote number k
        return quotes[np.minimum(first + k, len(quotes) - 1)]

    def value(k: int) -> pa.Array:  # member k (0..3) lies between quotes 4k+2 and 4k+3
        return _cut(buffer, quote(4 * k + 2) + 1, quote(4 * k + 3))

    columns = {"event_id": value(0), "customer_id": value(1), "metric": value(2)}
    ts_start, ts_end = quote(14) + 1, quote(15)
    micros = _instants(data, ts_start, ts_end)
    keep = (micros >= _YEAR_1000_US) & (micros <= (limit - _EPOCH) // _US)
    keep &= _real_dates(data, ts_start)
    # After the timestamp come "quantity" (quotes 16 and 17) and/or "properties"
    # (the next two); a key is told by its first letter.
    n_quotes = np.searchsorted(quotes, line_end) - first
    has_quantity = (n_quotes > 16) & (data[quote(16) + 1] == ord("q"))
    q_at = _skip_colon(data, quote(17) + 1)  # the quantity's first byte
    keep &= ~has_quantity | (q_at > 0)
    q_quoted = has_quantity & (data[q_at] == _QUOTE)  # a decimal string: two more quotes
    p_key = 16 + np.where(has_quantity, np.where(q_quoted, 4, 2), 0)  # "properties" quotes
    has_props = n_quotes > p_key
    closing = line_end - 1  # the line's closing brace
    # quantity: from its first byte to the next key (or the closing brace), trimmed
    q_begin = np.where(has_quantity, q_at, closing)
    q_stop = np.where(has_quantity, np.where(has_props, quote(p_key), closing), closing)
    q_text = pc.utf8_trim(_cut(buffer, q_begin, q_stop), ' \t\r\n,"')
    columns.update(_quantities(pc.if_else(pa.array(has_quantity), q_text, "1")))
    p_begin = np.where(has_props, quote(p_key + 1) + 1, closing)
    props = pc.utf8_ltrim(_cut(buffer, p_begin, closing), ": \t\r\n")
    columns["props_json"] = pc.if_else(pa.array(has_props), props, "{}")  # none: as if {}
    columns["event_ts"] = pa.array(micros, pa.int64()).cast(pa.timestamp("us"))
    return columns, keep


def _cut(buffer: pa.Buffer, begin: np.ndarray, stop: np.ndarray) -> pa.Array:
    """Byte ranges [begin, stop) of `buffer` (ascending, not overlapping) as strings.

    The ranges and the gaps between them are the elements of one string array
    laid over the buffer as it is; taking every other element copies the
    ranges out in C++.
    """
    n = len(begin)
    if not n:
        return pa.array([], pa.string())
    offsets = np.empty(2 * n + 1, np.int64)
    offsets[0:-1:2] = begin
    offsets[1::2] = np.maximum(stop, begin)
    offsets[-1] = offsets[-2]
    spans = pa.Array.from_buffers(pa.large_string(), 2 * n, [None, pa.py_buffer(offsets), buffer])
    return spans.take(pa.array(np.arange(0, 2 * n, 2))).cast(pa.string())


_US = datetime(1970, 1, 1, 0, 0, 0, 1) - _EPOCH


def _quantities(text: pa.Array) -> dict[str, pa.Array]:
    """Plain-decimal text, integer part and 9 fractional digits of quantities
    proven to be `digits[.digits]` (leading zeros of a string and trailing
    fractional zeros dropped, as schemas.plain_decimal does)."""
    integer = pc.utf8_ltrim(pc.replace_substring_regex(text, r"\..*$", ""), "0")
    integer = pc.if_else(pc.equal(integer, ""), "0", integer)
    fraction = pc.utf8_rtrim(pc.replace_substring_regex(text, r"^[0-9]*\.?", ""), "0")
    plain = pc.if_else(pc.equal(fraction, ""), integer,
                       pc.binary_join_element_wise(integer, fraction, "."))  # fmt: skip
    return {
        "quantity_text": plain,
        "quantity_int": pc.cast(integer, pa.int64()),
        "quantity_frac9": pc.cast(pc.utf8_rpad(fraction, 9, "0"), pa.int32()),
    }


_COLON_OR_SPACE = np.zeros(256, bool)
_COLON_OR_SPACE[[ord(c) for c in ": \t\r\n"]] = True


def _skip_colon(data: np.ndarray, at: np.ndarray, most: int = 16) -> np.ndarray:
    """Position of the first byte after the colon and whitespace that follow a key
    (0 where there are more than `most` of them: such rows are left to the next lane)."""
    at = at.copy()
    for _ in range(most):
        moving = _COLON_OR_SPACE[data[at]]
        if not moving.any():
            return at
        at += moving
    return np.where(_COLON_OR_SPACE[data[at]], 0, at)


def _digits(data: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """The decimal number written in `width` digits at each position of `at`."""
    value = np.zeros(len(at), np.int64)
    for k in range(width):
        value = value * 10 + (data[at + k].astype(np.int64) - 48)
    return value


def _date(data: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of `YYYY-MM-DD` at each start."""
    return _digits(data, start, 4), _digits(data, start + 5, 2), _digits(data, start + 8, 2)


def _instants(data: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Unix microseconds of timestamps already proven to have the fixed form.

    The fraction is truncated to microseconds (as schemas.parse_timestamp does).
    """
    year, month, day = _date(data, start)
    seconds = (_digits(data, start + 11, 2) * 3600 + _digits(data, start + 14, 2) * 60
               + _digits(data, start + 17, 2))  # fmt: skip
    zulu = data[stop - 1] == ord("Z")
    zone_at = np.where(zulu, stop - 1, stop - 6)
    offset = _digits(data, stop - 5, 2) * 60 + _digits(data, stop - 2, 2)
    offset = np.where(zulu, 0, np.where(data[zone_at] == ord("-"), -offset, offset))
    # fraction: digits between the '.' at start+19 (if any) and the zone, first 6 only
    frac_digits = np.where(data[start + 19] == ord("."), zone_at - (start + 20), 0)
    micros = np.zeros(len(start), np.int64)
    for k in range(6):
        digit = np.where(k < frac_digits, data[np.minimum(start + 20 + k, len(data) - 1)] - 48, 0)
        micros = micros * 10 + digit.astype(np.int64)
    days = _days_from_civil(year, month, day)
    return (days * 86_400 + seconds - offset * 60) * 1_000_000 + micros


def _real_dates(data: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The day exists in its month (29 February only in leap years)."""
    year, month, day = _date(data, start)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return day <= _DAYS_IN_MONTH[month] + ((month == 2) & leap)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468
