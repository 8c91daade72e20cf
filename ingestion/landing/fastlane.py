"""Vectorized validation of the common case: a whole batch at once.

Why: validating one message at a time in Python costs ~10 µs per event, more
than PostgreSQL needs to store it. Almost every message in a real stream is a
plain, valid event, so a batch goes through set-based passes that *accept*
the lines they can prove valid: first the fixed-form lane (fixedform.py: one
RE2 match and numpy offsets, for the shape serializers write), then, for the
other shapes, DuckDB (its C++ JSON parser, regular expressions and casts).
Every other line goes to `schemas.validate`, the one authority on the rules
of section 1.

The contract, tested line by line against `schemas.validate` in
tests/unit/test_fastlane.py: a line accepted here is accepted there with an
identical Event (same normalized fields, same content hash). Anything the
fast lane is not sure about (invalid UTF-8, floats, escapes that yyjson and
orjson treat differently, offsets, leap seconds, duplicate keys, ...) goes to
the slow lane, so every reject keeps its exact rule and message.

Properties are canonicalized by `schemas.canonical_properties` once per
*distinct* properties object in the batch (usage data repeats a handful of
shapes), so their rules also live in one place.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing import fixedform
from ingestion.landing.validation import FUTURE_TOLERANCE, PropertiesError, canonical_properties

# Lines matching this go to the slow lane whatever they hold: constructs that
# DuckDB's JSON reader (yyjson) accepts and orjson does not (trailing commas,
# NaN/Infinity); UTF-16 surrogate escapes, which the two decode differently; a
# \u escape inside a key (it could spell a field name); and a field name that
# occurs twice (orjson keeps the last duplicate key, yyjson the first).
_FIELDS = ("event_id", "customer_id", "metric", "timestamp", "quantity", "properties")
_GUARD = "|".join(
    [r",\s*[\]}]", "NaN", "Infinity", r"\\u[dD][89a-fA-F]", r'\\u[^"]*"\s*:']
    + [f'"{name}".*"{name}"' for name in _FIELDS]
)
# orjson refuses nesting deeper than 1024, which yyjson accepts; only a line of
# more than 2 KiB can nest that deep, and such lines are rare in usage data.
# One limit for both fast lanes.
_MAX_FAST_BYTES = fixedform.MAX_LINE_BYTES
_PATHS = "[" + ", ".join(f"'$.{name}'" for name in _FIELDS) + "]"

# One JSON parse per line (json_extract of all six fields as JSON text: a string
# keeps its quotes, so its type shows). Ids, metric and timestamp are checked on
# that text; a number's exact digits are read from the raw line, because the
# parser turns fractions into doubles; `"quantity"` occurs once (guard above),
# so the match is the top-level field.
_PARSE_SQL = f"""
CREATE OR REPLACE TEMP TABLE parsed AS
SELECT i, j,
       CASE WHEN j[5] IS NULL OR j[5] LIKE '"%' OR regexp_full_match(j[5], '[0-9]{{1,18}}')
            THEN NULL  -- no quantity, a string, or an exact integer: j[5] says it all
            ELSE regexp_extract(line, '"quantity"\\s*:\\s*([-0-9.eE+]+)', 1) END AS q_raw
FROM (SELECT i, line, json_extract(line, {_PATHS})::VARCHAR[] AS j
      FROM candidates WHERE line IS NOT NULL AND json_valid(line))
"""

_CHECK_SQL = r"""
WITH fields AS MATERIALIZED (
    SELECT i, j[6] AS props_json,
           substr(j[1], 2, strlen(j[1]) - 2) AS event_id,
           substr(j[2], 2, strlen(j[2]) - 2) AS customer_id,
           substr(j[3], 2, strlen(j[3]) - 2) AS metric,
           regexp_extract(j[4],
               '^"([1-9][0-9]{3}-[0-9]{2}-[0-9]{2})[Tt]((?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])'
               '(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"$', ['d', 't', 'f', 'z']) AS ts,
           CASE WHEN j[5] IS NULL THEN '1'
                WHEN j[5] LIKE '"%' THEN substr(j[5], 2, strlen(j[5]) - 2)
                WHEN regexp_full_match(j[5], '[0-9]{1,18}') THEN j[5]  -- an exact integer
                ELSE q_raw END AS q
    FROM parsed
    WHERE regexp_full_match(j[1], '"[A-Za-z0-9_.:\-]{1,128}"')
      AND regexp_full_match(j[2], '"[A-Za-z0-9_.:\-]{1,128}"')
      AND regexp_full_match(j[3], '"[a-z][a-z0-9_]{0,63}"')
      AND (j[6] IS NULL OR j[6] LIKE '{%')
), parts AS MATERIALIZED (
    SELECT i, event_id, customer_id, metric, props_json,
           TRY_CAST(ts.d || ' ' || ts.t AS TIMESTAMP) AS local_ts,
           rpad(left(ts.f, 6), 6, '0') AS frac6,
           CASE WHEN ts.z IN ('Z', 'z') THEN 0
                ELSE (CASE WHEN ts.z[1] = '-' THEN -1 ELSE 1 END)
                     * (TRY_CAST(ts.z[2:3] AS INTEGER) * 60 + TRY_CAST(ts.z[5:6] AS INTEGER))
           END AS offset_minutes,
           coalesce(TRY_CAST(ts.z[2:3] AS INTEGER), 0) <= 23
               AND coalesce(TRY_CAST(ts.z[5:6] AS INTEGER), 0) <= 59 AS offset_ok,
           coalesce(nullif(ltrim(regexp_extract(q, '^([0-9]+)(?:\.[0-9]+)?$', 1), '0'), ''), '0')
               AS q_int,
           rtrim(regexp_extract(q, '^[0-9]+\.([0-9]+)$', 1), '0') AS q_frac,
           regexp_full_match(q, '[0-9]+(\.[0-9]+)?') AS q_plain
    FROM fields
    WHERE ts.d <> ''
), instants AS MATERIALIZED (
    SELECT *, local_ts - to_minutes(offset_minutes) AS utc_seconds
    FROM parts
    WHERE offset_ok AND offset_minutes IS NOT NULL AND local_ts IS NOT NULL
      AND q_plain AND strlen(q_int) <= 12 AND strlen(q_frac) <= 9
), accepted AS (
SELECT i, event_id, customer_id, metric,
       utc_seconds + to_microseconds(CAST(frac6 AS BIGINT)) AS event_ts,
       CAST(q_int AS BIGINT) AS quantity_int,
       CAST(rpad(q_frac, 9, '0') AS INTEGER) AS quantity_frac9,
       q_int || CASE WHEN q_frac <> '' THEN '.' || q_frac ELSE '' END AS quantity_text,
       props_json
FROM instants
WHERE utc_seconds >= TIMESTAMP '1000-01-01'
  AND utc_seconds + to_microseconds(CAST(frac6 AS BIGINT)) <= $limit
)
SELECT a.i, a.event_id, a.customer_id, a.metric, a.event_ts,
       a.quantity_int, a.quantity_frac9, a.quantity_text,
       p.properties, p.properties_text, p.properties_num,
       unhex(md5(concat_ws(chr(31), a.event_id, a.customer_id, a.metric,
                           CAST(epoch_us(a.event_ts) AS VARCHAR),
                           a.quantity_text, p.properties))) AS content_hash
FROM accepted a JOIN props p ON p.props_json IS NOT DISTINCT FROM a.props_json
ORDER BY a.i
"""


_local = threading.local()
# The DuckDB lane's fixed cost (planning its queries) is ~40 ms a batch: below
# this many lines left by the fixed-form lane, schemas.validate (~10 µs a line)
# is cheaper. The tests set it to 0 to hold the DuckDB lane to the contract.
DUCKDB_LANE_MIN_LINES = 2_000
MD5_IN_DUCKDB_MIN = 4_096  # values (md5_digests)


@dataclass(frozen=True)
class Lines:
    """A batch's messages as one buffer and the offsets between them.

    Why: this is the form validation works on, and it crosses to a worker
    process as two objects, where a list of 50k `bytes` pickles one by one
    (~23 CPU-ms a batch on the two sides, measured).
    """

    data: bytes
    offsets: np.ndarray  # int64, one more than there are lines

    @classmethod
    def of(cls, payloads: Sequence[bytes]) -> Lines:
        offsets = np.zeros(len(payloads) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, payloads), np.int64, len(payloads)), out=offsets[1:])
        return cls(b"".join(payloads), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> bytes:
        return self.data[int(self.offsets[index]) : int(self.offsets[index + 1])]

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(len(self)))


@dataclass(frozen=True)
class FastResult:
    """What the fast lane accepted (columnar, in input order) and what it left."""

    accepted: pa.Table  # i, event_id, customer_id, metric, event_ts, quantity (int64), ...
    slow: list[int]  # indices for schemas.validate, ascending


def validate_many(lines: Sequence[bytes] | Lines, landing_time: datetime) -> FastResult:
    """Split a batch into proven-valid events (columnar) and lines for the slow lane.

    Two lanes, cheapest first: the fixed-form lane (fixedform.py) for lines in
    the shape serializers write, then DuckDB for the other lines (when there are
    enough of them to pay for its start-up).
    """
    n = len(lines)
    if n == 0:
        return FastResult(_empty(), [])
    texts, data, offsets = _as_utf8(lines if isinstance(lines, Lines) else Lines.of(lines))
    limit = landing_time + FUTURE_TOLERANCE
    short = pc.fill_null(pc.less(pc.binary_length(texts), _MAX_FAST_BYTES), False)
    short = short.to_numpy(zero_copy_only=False)
    fixed = _fixed_form(data, offsets, np.flatnonzero(fixedform.fixed_form_mask(texts)), limit)
    done = np.zeros(n, bool)
    done[fixed.column("i").to_numpy()] = True
    left = np.flatnonzero(~done & short)
    table = None
    if len(left) >= DUCKDB_LANE_MIN_LINES:  # else not even the guards' cost (~0.4-0.9 ms)
        candidates = pa.table({"i": pa.array(left, pa.int32()), "line": texts.take(left)})
        # Guards in Arrow (its RE2 matching costs less than DuckDB's): a line that
        # fails them goes to the slow lane.
        guarded = pc.match_substring_regex(candidates.column("line"), _GUARD)
        candidates = candidates.filter(pc.invert(pc.fill_null(guarded, True)))
        if candidates.num_rows >= DUCKDB_LANE_MIN_LINES:
            table = _duckdb_lane(candidates, limit)
    if table is not None and table.num_rows:
        table = pa.concat_tables([fixed, table.cast(fixed.schema)]).sort_by("i")
    else:
        table = fixed
    done[table.column("i").to_numpy()] = True
    return FastResult(table, np.flatnonzero(~done).tolist())


def _duckdb_lane(candidates: pa.Table, limit: datetime) -> pa.Table:
    con = _connection()
    con.register("candidates", candidates)
    try:
        con.execute(_PARSE_SQL)
        distinct = [r[0] for r in con.execute("SELECT DISTINCT j[6] FROM parsed").fetchall()]
        con.register("props", _canonical_props(distinct))
        return con.sql(_CHECK_SQL, params={"limit": limit}).to_arrow_table()
    finally:
        con.unregister("candidates")
        con.unregister("props")
        con.execute("DROP TABLE IF EXISTS parsed")


def _fixed_form(
    data: np.ndarray, offsets: np.ndarray, rows: np.ndarray, limit: datetime
) -> pa.Table:
    """The fixed-form lane's accepted lines, in the DuckDB lane's columns.

    Lines whose properties the fast lanes cannot vouch for are left out (they
    go on to the next lane)."""
    if not len(rows):
        return _ACCEPTED.empty_table()
    columns, keep = fixedform.decode(data, offsets[:-1], offsets[1:], rows, limit)
    fixed = pa.table({"i": pa.array(rows, pa.int32()), **columns}).filter(pa.array(keep))
    props = fixed.column("props_json")
    forms = _canonical_props(pc.unique(props).to_pylist())
    at = pc.index_in(props, value_set=forms.column("props_json"))
    if at.null_count:
        vouched = pc.is_valid(at)
        fixed, at = fixed.filter(vouched), at.filter(vouched)
    col = fixed.column
    properties = forms.column("properties").take(at)
    micros = pc.cast(pc.cast(col("event_ts"), pa.int64()), pa.string())
    canonical = pc.binary_join_element_wise(
        col("event_id"), col("customer_id"), col("metric"), micros, col("quantity_text"),
        properties, "\x1f",
    )  # fmt: skip
    return pa.table(
        [col("i"), col("event_id"), col("customer_id"), col("metric"), col("event_ts"),
         col("quantity_int"), col("quantity_frac9"), col("quantity_text"), properties,
         forms.column("properties_text").take(at), forms.column("properties_num").take(at),
         md5_digests(canonical)],
        schema=_ACCEPTED,
    )  # fmt: skip


def md5_digests(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """MD5 of each string (16 bytes): the content hash. Vectorized in DuckDB for a large batch;
    below MD5_IN_DUCKDB_MIN values hashlib, one by one, is cheaper: a DuckDB query's fixed
    cost is ~1.5-2 ms, a batch of 1,000 (the usage API's largest request) 0.9 ms in all with
    hashlib (measured; the two cross near 5,000 values)."""
    if len(values) >= MD5_IN_DUCKDB_MIN:
        return _per_value("unhex(md5(v))", values).combine_chunks()
    digests = [None if value is None
               else hashlib.md5(value.encode(), usedforsecurity=False).digest()
               for value in values.to_pylist()]  # fmt: skip
    return pa.array(digests, pa.binary())


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """DuckDB's 64-bit hash of each string, vectorized (uint64)."""
    return _per_value("hash(v)", values).to_numpy().astype(np.uint64, copy=False)


def _per_value(expression: str, values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """DuckDB's `expression` of each value `v`, in input order."""
    con = _connection()
    con.register("per_value_input", pa.table({"v": values}))
    try:
        table = con.sql(f"SELECT {expression} AS r FROM per_value_input").to_arrow_table()
    finally:
        con.unregister("per_value_input")
    return table.column("r")


def _canonical_props(distinct: list[str | None]) -> pa.Table:
    """(props_json -> canonical forms) for each distinct properties object; objects
    the fast lane cannot vouch for (floats, rule breaks) are simply left out, so
    their lines fall to the slow lane by the inner join.

    Forms are remembered across batches (most objects recur: a region, a model);
    on the 1M sample that saves ~0.1 of this step's ~0.3 CPU-s per million."""
    global _forms_bytes
    if len(_FORMS) > _FORMS_LIMIT or _forms_bytes > _FORMS_BYTES_LIMIT:
        _FORMS.clear()
        _forms_bytes = 0
    keys, canon, texts, nums = [], [], [], []
    for raw in distinct:
        if raw in _FORMS:
            forms = _FORMS[raw]
        else:
            forms = _FORMS[raw] = _forms(raw)
            _forms_bytes += len(raw or "") + (sum(map(len, forms)) if forms else 0)
        if forms is None:
            continue
        keys.append(raw)
        canon.append(forms[0])
        texts.append(forms[1])
        nums.append(forms[2])
    return pa.table(
        {
            "props_json": pa.array(keys, pa.string()),
            "properties": pa.array(canon, pa.string()),
            "properties_text": pa.array(texts, pa.string()),
            "properties_num": pa.array(nums, pa.string()),
        }
    )


def _forms(raw: str | None) -> tuple[str, str, str] | None:
    """The canonical forms of one properties object's JSON text, or None when the
    fast lanes cannot vouch for it."""
    if raw is None:
        return ("{}", "{}", "{}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or any(type(v) is float for v in doc.values()):
        return None
    try:
        return canonical_properties(doc)
    except PropertiesError:
        return None


_FORMS: dict[str | None, tuple[str, str, str] | None] = {}  # props_json -> forms (per process)
# bounded memory: cleared when it holds more entries, or more characters, than this (a stream
# of distinct 16 KiB properties objects would otherwise keep gigabytes per worker)
_FORMS_LIMIT = 200_000
_FORMS_BYTES_LIMIT = 64 * 1024 * 1024
_forms_bytes = 0


def _as_utf8(lines: Lines) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The lines as an Arrow string array (lines that are not UTF-8 become null),
    with the joined bytes (numpy) and each line's start offset (and the end).

    Built from one joined buffer and its offsets: pa.array() over a list of
    bytes objects costs ~10 µs per element, this ~0.3 µs.
    """
    offsets = lines.offsets
    binary = pa.Array.from_buffers(
        pa.large_binary(), len(lines), [None, pa.py_buffer(offsets), pa.py_buffer(lines.data)]
    )
    # padded: the fixed-form lane reads a few bytes past a line's last quote, which
    # may be the batch's last byte
    data = np.frombuffer(lines.data + bytes(_PADDING), np.uint8)
    try:
        return binary.cast(pa.large_string()), data, offsets
    except pa.ArrowInvalid:  # some line is not UTF-8: null those (the slow lane rejects them)
        readable = pa.array([_is_utf8(line) for line in lines])
        texts = pc.if_else(readable, binary, pa.scalar(None, binary.type)).cast(pa.large_string())
        return texts, data, offsets


_PADDING = 64


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def close_connection() -> None:
    """Close this thread's DuckDB connection, if any (before a fork: a database
    must not be shared across one; the next call here opens a new one)."""
    con = getattr(_local, "con", None)
    if con is not None:
        con.close()
        del _local.con


def _connection() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(config={"threads": 1})
        _local.con = con
    return con


def _empty() -> pa.Table:
    return pa.table({"i": pa.array([], pa.int32())})


_ACCEPTED = pa.schema(
    [("i", pa.int32()), ("event_id", pa.string()), ("customer_id", pa.string()),
     ("metric", pa.string()), ("event_ts", pa.timestamp("us")), ("quantity_int", pa.int64()),
     ("quantity_frac9", pa.int32()), ("quantity_text", pa.string()),
     ("properties", pa.string()), ("properties_text", pa.string()),
     ("properties_num", pa.string()), ("content_hash", pa.binary())]
)  # fmt: skip
