"""The vectorized fast lane must agree with `schemas.validate`, line for line.

`fastlane.validate_many` may only *accept* lines; whatever it accepts must be
accepted by `schemas.validate` with an identical Event (every normalized field
and the content hash). These tests feed both the same lines: a generated
sample (every shape the generator makes, including its invalid lines) and
edge cases aimed at the places where DuckDB's JSON reader and orjson differ.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ingestion.demo.generator import generate
from ingestion.landing import fastlane, fixedform
from ingestion.landing.batch import Batch
from ingestion.landing.validation import FUTURE_TOLERANCE, Event, Reject, validate

LANDING = datetime(2026, 11, 1, 12, 0, 0)

BASE = '"event_id": "e1", "customer_id": "c1", "metric": "api_calls"'
TS = '"timestamp": "2026-10-05T10:00:00Z"'


def line(*members: str) -> bytes:
    return ("{" + ", ".join(members) + "}").encode()


EDGE_CASES: list[bytes] = [
    line(BASE, TS),
    line(BASE, TS, '"quantity": 5'),
    line(BASE, TS, '"quantity": 0'),
    line(BASE, TS, '"quantity": -0'),
    line(BASE, TS, '"quantity": 1.10'),
    line(BASE, TS, '"quantity": 1.0'),
    line(BASE, TS, '"quantity": 1e3'),
    line(BASE, TS, '"quantity": 1E-3'),
    line(BASE, TS, '"quantity": 0.123456789'),
    line(BASE, TS, '"quantity": 0.1234567891'),
    line(BASE, TS, '"quantity": 0.1234567890'),
    line(BASE, TS, '"quantity": 999999999999.999999999'),
    line(BASE, TS, '"quantity": 1000000000000'),
    line(BASE, TS, '"quantity": 123456789012345678901234567890'),
    line(BASE, TS, '"quantity": 18446744073709551615'),
    line(BASE, TS, '"quantity": -1'),
    line(BASE, TS, '"quantity": "007"'),
    line(BASE, TS, '"quantity": "0.000"'),
    line(BASE, TS, '"quantity": "1.50"'),
    line(BASE, TS, '"quantity": "1."'),
    line(BASE, TS, '"quantity": "1e3"'),
    line(BASE, TS, '"quantity": " 1"'),
    line(BASE, TS, '"quantity": true'),
    line(BASE, TS, '"quantity": null'),
    line(BASE, TS, '"quantity": [1]'),
    line(BASE, TS, '"quantity": 2, "quantity": 3'),
    line(BASE, TS, '"quantit\\u0079": 4'),
    line(BASE, TS, '"properties": {"quantity": 7}, "quantity": 1.5'),
    line(BASE, TS, '"quantity": 1.5, "properties": {"quantity": 7}'),
    line(BASE, TS, '"properties": {"note": "quantity"}, "quantity": 2.25'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00.5Z"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00.000Z"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00.123456789Z"'),
    line(BASE, '"timestamp": "2026-10-05t10:00:00z"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00+02:00"'),
    line(BASE, '"timestamp": "2026-10-05T01:00:00.25-05:30"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00+24:00"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00+05:60"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00"'),
    line(BASE, '"timestamp": "2026-10-05 10:00:00Z"'),
    line(BASE, '"timestamp": "2026-02-30T10:00:00Z"'),
    line(BASE, '"timestamp": "2026-10-05T24:00:00Z"'),
    line(BASE, '"timestamp": "2026-10-05T23:59:59Z"'),
    line(BASE, '"timestamp": "2026-13-05T10:00:00Z"'),
    line(BASE, '"timestamp": "2026-00-05T10:00:00Z"'),
    line(BASE, '"timestamp": "2026-10-00T10:00:00Z"'),
    line(BASE, '"timestamp": "2026-10-32T10:00:00Z"'),
    line(BASE, '"timestamp": "2025-02-29T10:00:00Z"'),
    line(BASE, '"timestamp": "2024-02-29T10:00:00Z"'),
    line(BASE, '"timestamp": "2024-02-29T00:30:00+01:00"'),
    line(BASE, '"timestamp": "2026-1-05T10:00:00Z"'),
    line(BASE, '"timestamp": "2026-10-05T10:0:00Z"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00.Z"'),
    line(BASE, '"timestamp": "+2026-10-05T10:00:00Z"'),
    line(BASE, '"timestamp": "2026-10-05T23:59:60Z"'),
    line(BASE, '"timestamp": "2016-12-31T23:59:60Z"'),
    line(BASE, '"timestamp": "1000-01-01T00:30:00+01:00"'),
    line(BASE, '"timestamp": "0999-12-31T23:00:00Z"'),
    line(BASE, '"timestamp": "9999-12-31T23:59:59-01:00"'),
    line(BASE, '"timestamp": "2026-11-01T12:05:00Z"'),
    line(BASE, '"timestamp": "2026-11-01T12:05:00.000001Z"'),
    line(BASE, '"timestamp": "2026-11-01T13:05:00+01:00"'),
    line(BASE, '"timestamp": 1730000000'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00Z", "timestamp": "2026-10-06T10:00:00Z"'),
    line('"event_id": "e1", "event\\u005fid": "e2"', '"customer_id": "c1", "metric": "m"', TS),
    line('"event_id": "\\u0065\\u0031"', '"customer_id": "c1", "metric": "m"', TS),
    line('"event_id": "e 1"', '"customer_id": "c1", "metric": "m"', TS),
    line('"event_id": ""', '"customer_id": "c1", "metric": "m"', TS),
    line('"event_id": "' + "x" * 128 + '"', '"customer_id": "c1", "metric": "m"', TS),
    line('"event_id": "' + "x" * 129 + '"', '"customer_id": "c1", "metric": "m"', TS),
    line('"event_id": 17', '"customer_id": "c1", "metric": "m"', TS),
    line('"event_id": "e1"', '"customer_id": "c1", "metric": "Api"', TS),
    line('"event_id": "e1"', '"customer_id": "c1", "metric": "a' + "b" * 64 + '"', TS),
    line('"event_id": "e1"', '"customer_id": "c1", "metric": "a' + "b" * 63 + '"', TS),
    line('"event_id": "e1"', '"customer_id": null, "metric": "m"', TS),
    line(BASE, TS, '"properties": {}'),
    line(BASE, TS, '"properties": null'),
    line(BASE, TS, '"properties": []'),
    line(BASE, TS, '"properties": {"b": "2", "a": "x"}'),
    line(BASE, TS, '"properties": {"n": 5, "f": 2.50, "t": true, "s": "3.10"}'),
    line(BASE, TS, '"properties": {"big": 123456789012345678901234567890}'),
    line(BASE, TS, '"properties": {"k": "v", "k": "w"}'),
    line(BASE, TS, '"properties": {"nested": {"a": 1}}'),
    line(BASE, TS, '"properties": {"nothing": null}'),
    line(BASE, TS, '"properties": {"nul": "a\\u0000b"}'),
    line(BASE, TS, '"properties": {"caf\\u00e9": "cr\\u00e8me \\"br\\u00fbl\\u00e9e\\""}'),
    line(BASE, TS, '"properties": {"emoji": "\\ud83d\\ude00"}'),
    line(BASE, TS, '"properties": {"lone": "\\ud800"}'),
    line(BASE, TS, '"properties": {"tab": "a\\tb", "slash": "a\\/b"}'),
    line(BASE, TS, '"properties": {"utf8": "zürich ✓"}'),
    line(BASE, TS, '"extra": [1, 2,]'),
    line(BASE, TS, '"extra": NaN'),
    line(BASE, TS, '"extra": -Infinity'),
    line(BASE, TS, '"extra": 1e400'),
    line(BASE, TS, '"extra": ' + "[" * 1025 + "]" * 1025),
    line(BASE, TS, '"extra": ' + "[" * 20 + "]" * 20),
    line(BASE, TS, '"extra": "' + "y" * 3000 + '"'),
    line(BASE, TS, '"extra": "' + "y" * 17000 + '"'),
    line(BASE, TS) + b" ",
    b"  " + line(BASE, TS),
    b"[" + line(BASE, TS) + b"]",
    b"not json",
    b"\xff\xfe not utf-8",
    line(BASE, TS)[:-1],
    b'"just a string"',
    b"{}",
]

# Lines aimed at the fixed-form lane (fixedform.py): separators and whitespace,
# boundaries of the values it decodes itself, and keys it must not mistake.
COMPACT = '"event_id":"e1","customer_id":"c1","metric":"api_calls"'
FIXED_CASES: list[bytes] = [
    b"{" + COMPACT.encode() + b',"timestamp":"2026-10-05T10:00:00Z"}',
    b"{" + COMPACT.encode() + b',"timestamp":"2026-10-05T10:00:00Z","quantity":12}',
    b"{" + COMPACT.encode() + b',"timestamp":"2026-10-05T10:00:00Z","properties":{"a":"b"}}',
    b'{ "event_id" : "e1" ,\t"customer_id":"c1", "metric":"m",  "timestamp": '
    b'"2026-10-05T10:00:00Z" , "quantity" :7 , "properties" : { "k" : 1 } }',
    line(BASE, TS, '"quantity": 007'),
    line(BASE, TS, '"quantity": 999999999999'),
    line(BASE, TS, '"quantity": 1000000000000'),
    line(BASE, TS, '"quantity": 5', '"properties": {"quantity": 9}'),
    line(BASE, TS, '"quantity": 2322.393'),
    line(BASE, TS, '"quantity": 0.000000001'),
    line(BASE, TS, '"quantity": 0.0000000001'),
    line(BASE, TS, '"quantity": 999999999999.999999999'),
    line(BASE, TS, '"quantity": 1.500'),
    line(BASE, TS, '"quantity": 0.0'),
    line(BASE, TS, '"quantity": 01.5'),
    line(BASE, TS, '"quantity": 1.'),
    line(BASE, TS, '"quantity": .5'),
    line(BASE, TS, '"quantity": "16925.00"'),
    line(BASE, TS, '"quantity": "000000000007.10"'),
    line(BASE, TS, '"quantity": "0000000000007"'),
    line(BASE, TS, '"quantity": "0.0"'),
    line(BASE, TS, '"quantity": "1455.077"', '"properties": {"region": "eu"}'),
    line(BASE, TS, '"quantity":"0"', '"properties":{"quantity":"2"}'),
    line(BASE, TS, '"quantity" :  "7" ', '"properties": {}'),
    line(BASE, TS, '"quantity": 7', '"properties": {"quantity": "2.5"}'),
    line(BASE, TS, '"quantity": "1.5'),
    line(BASE, TS, '"quantity": 1.5"'),
    line(BASE, TS, '"properties": {"quantity": 9, "qty": "1.50"}'),
    line(BASE, TS, '"properties": {"region": "eu", "ok": false, "n": -3}'),
    line(BASE, TS, '"properties": {"brace": "a}b"}'),
    line(BASE, TS, '"properties": {"e": "x\\u0041"}'),
    line(BASE, TS, '"properties": {"a": "1", "a": "2"}'),
    line(BASE, TS, '"properties": {"a": 1.5}'),
    line(BASE, TS, '"properties": {"a": 1e2}'),
    line(BASE, TS, '"properties": {"a" "b"}'),
    line(BASE, TS, '"properties": {"tab": "a\tb"}'.replace("\\t", "\t")),
    line(BASE, TS, '"properties": {"raw tab": "a	b"}'),
    line(BASE, TS, '"properties": {"nul": null}'),
    line(BASE, TS, '"properties": {}', '"quantity": 3'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00.1234567Z"'),
    line(BASE, '"timestamp": "2026-10-05T10:00:00.999999999+00:00"'),
    line(BASE, '"timestamp": "2026-12-31T23:30:00-01:00"'),
    line(BASE, '"timestamp": "2026-01-01T00:30:00+01:00"'),
    line(BASE, '"timestamp": "1969-12-31T23:59:59.5Z"'),
    line(BASE, '"timestamp": "1000-01-01T00:00:00Z"'),
    line(BASE, '"timestamp": "1000-01-01T00:00:00+00:01"'),
    line(BASE, '"timestamp": "2000-02-29T00:00:00Z"'),
    line(BASE, '"timestamp": "1900-02-29T00:00:00Z"'),
    line(BASE, '"timestamp": "2026-04-31T00:00:00Z"'),
    line(BASE, '"timestamp": "2026-11-01T12:04:59.999999Z"'),
    line(BASE, '"timestamp": "2026-11-01T12:05:00.0000009Z"'),
    line(BASE, '"timestamp": "2026-11-01T12:05:01Z"'),
    line(BASE, '"timestamp": "2026-11-01T11:05:01-01:00"'),
    line('"event_id": "a.b:c-d_E9"', '"customer_id": "' + "c" * 128 + '"', '"metric": "z9_"', TS),
    line('"event_id": "e1"', '"customer_id": "c1"', '"metric": "m"', TS, '"extra": 1'),
    line('"customer_id": "c1"', '"event_id": "e1"', '"metric": "m"', TS),
    line(BASE, TS) + b"\r",
]
EDGE_CASES += FIXED_CASES


@pytest.fixture(autouse=True)
def duckdb_lane_for_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the DuckDB lane to the contract too: by default it only runs on batches
    that leave it many lines, which single test lines never do."""
    monkeypatch.setattr(fastlane, "DUCKDB_LANE_MIN_LINES", 0)


@pytest.fixture(scope="module")
def sample_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out: Path = tmp_path_factory.mktemp("sample")
    generate(out, events=20_000, seed=7)
    return [raw for raw in (out / "events.jsonl").read_bytes().split(b"\n") if raw.strip()]


def reference(lines: list[bytes], landing: datetime) -> list[Event | Reject]:
    return [validate(raw, landing) for raw in lines]


@pytest.mark.parametrize("raw", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_fast_lane_accepts_only_what_validate_accepts_identically(raw: bytes) -> None:
    fast = fastlane.validate_many([raw], LANDING)
    expected = validate(raw, LANDING)
    if fast.accepted.num_rows:
        assert isinstance(expected, Event), (
            f"fast lane accepted a line validate rejects: {expected}"
        )
        assert _batch_events([raw])[0] == expected
        assert _batch_events([raw])[0].content_hash == expected.content_hash
    else:
        assert fast.slow == [0]


@pytest.mark.parametrize("raw", FIXED_CASES, ids=range(len(FIXED_CASES)))
def test_fixed_form_lane_alone_agrees_with_validate(raw: bytes) -> None:
    """The fixed-form lane by itself (not hidden behind the DuckDB lane)."""
    accepted = _fixed_lane([raw])
    expected = validate(raw, LANDING)
    if accepted:
        assert isinstance(expected, Event), f"fixed lane accepted what validate rejects: {expected}"
        assert accepted[0] == expected
        assert accepted[0].content_hash == expected.content_hash


def test_fixed_form_lane_carries_the_common_shapes() -> None:
    plain = [
        line(BASE, TS),
        line(BASE, TS, '"quantity": 5'),
        line(BASE, '"timestamp": "2026-10-05T10:00:00.123+02:00"', '"quantity": 12',
             '"properties": {"region": "eu", "code": 404, "premium": true}'),
        line(BASE, TS, '"quantity": "1455.077"', '"properties": {"region": "eu"}'),
        line(BASE, TS, '"quantity": 2.5', '"properties": {"quantity": "2"}'),
        FIXED_CASES[0], FIXED_CASES[1], FIXED_CASES[2], FIXED_CASES[3],
    ]  # fmt: skip
    assert len(_fixed_lane(plain)) == len(plain)


def test_fixed_form_lane_takes_most_of_a_generated_sample(sample_lines: list[bytes]) -> None:
    accepted = _fixed_lane(sample_lines, with_index=True)
    assert len(accepted) >= 0.97 * len(sample_lines)  # all but the odd and invalid lines
    expected = reference(sample_lines, LANDING)
    for index, event in accepted:
        assert event == expected[index]
        assert event.content_hash == expected[index].content_hash


def test_common_shapes_take_the_fast_lane() -> None:
    """The lane must actually carry plain events, or the speed-up is gone."""
    plain = [
        line(BASE, TS, '"quantity": 5'),
        line(BASE, TS, '"quantity": 1.10', '"properties": {"region": "eu", "code": 404}'),
        line(BASE, '"timestamp": "2026-10-05T10:00:00.123+02:00"', '"quantity": "2.5"'),
    ]
    assert fastlane.validate_many(plain, LANDING).slow == []


def test_whole_batch_matches_message_by_message(sample_lines: list[bytes]) -> None:
    lines = sample_lines + EDGE_CASES
    batch = Batch(source="test", landing_time=LANDING)
    for number, raw in enumerate(lines, start=1):
        batch.add(raw, f"test:{number}")
    validated = batch.validate()
    expected = reference(lines, LANDING)
    expected_events = [e for e in expected if isinstance(e, Event)]
    expected_rejects = [
        (f"test:{n}", r.rule, r.detail)
        for n, r in enumerate(expected, start=1)
        if isinstance(r, Reject)
    ]
    events = validated.as_events()
    assert len(events) == len(expected_events)
    for got, want in zip(events, expected_events, strict=True):
        assert got == want
        assert got.content_hash == want.content_hash
        assert str(got.quantity) == str(want.quantity.normalize()) or got.quantity == want.quantity
    assert [(r.origin, r.rule, r.detail) for r in validated.rejects] == expected_rejects
    origins = validated.events.column("origin").to_pylist()
    accepted_numbers = [n for n, r in enumerate(expected, start=1) if isinstance(r, Event)]
    assert origins == [f"test:{n}" for n in accepted_numbers]
    # the sample's plain events go through the fast lane, not the fallback
    fast = fastlane.validate_many(sample_lines, LANDING)
    assert len(fast.slow) <= len(sample_lines) // 50


def test_a_batch_of_joined_lines_validates_like_a_list(sample_lines: list[bytes]) -> None:
    """The Kafka workers get their messages as one buffer (fastlane.Lines)."""
    lines = sample_lines[:300] + EDGE_CASES
    joined = fastlane.Lines.of(lines)
    assert len(joined) == len(lines) and list(joined) == lines and joined[5] == lines[5]
    origins = pa.array([f"test:{n}" for n in range(len(lines))], pa.string())
    as_list, as_lines = (
        Batch(source="t", landing_time=LANDING),
        Batch(source="t", landing_time=LANDING),
    )
    as_list.extend(list(lines), origins)
    as_lines.extend(joined, origins)
    want, got = as_list.validate(), as_lines.validate()
    assert got.rejects and got.rejects == want.rejects
    assert got.events.equals(want.events)


@pytest.mark.parametrize("last", [b'"just a string"', b'"', b'{"a":"', b"{", b""])
def test_a_batch_may_end_in_any_bytes(last: bytes) -> None:
    """The fixed-form lane reads past quotes; a batch ending in one must not crash."""
    first = line(BASE, TS, '"quantity": 5')
    result = fastlane.validate_many([first, last], LANDING)
    assert result.accepted.column("i").to_pylist() == [0]
    assert result.slow == [1]


def test_mutated_lines_agree_with_validate() -> None:
    """Fuzz: fixed-form lines with one byte replaced, deleted or doubled; whatever a
    fast lane accepts must be exactly what validate gives (seeded, reproducible)."""
    rng = random.Random(20261130)
    seeds = [
        line(BASE, TS),
        line(BASE, '"timestamp": "2026-10-05T01:00:00.25-05:30"', '"quantity": 12.5'),
        line(BASE, TS, '"quantity": "007.10"', '"properties": {"a": "1", "b": 2, "c": true}'),
        b"{" + COMPACT.encode() + b',"timestamp":"2024-02-29T23:59:59Z","quantity":0}',
    ]
    alphabet = b'"{}[],: \t0129aZ.\\-+TtzZe'
    lines = []
    for _ in range(3000):
        raw = bytearray(rng.choice(seeds))
        at = rng.randrange(len(raw))
        action = rng.randrange(3)
        if action == 0:
            raw[at] = rng.choice(alphabet)
        elif action == 1:
            del raw[at]
        else:
            raw[at:at] = raw[at : at + rng.randrange(1, 6)]
        lines.append(bytes(raw))
    result = fastlane.validate_many(lines, LANDING)
    expected = reference(lines, LANDING)
    rows = result.accepted.to_pylist()
    assert len(rows) + len(result.slow) == len(lines)
    for row in rows:
        want = expected[row["i"]]
        assert isinstance(want, Event), (lines[row["i"]], want)
        got = Event(row["event_id"], row["customer_id"], row["metric"], row["event_ts"],
                    Decimal(row["quantity_text"]), row["properties"], row["properties_text"],
                    row["properties_num"], row["content_hash"])  # fmt: skip
        assert got == want, lines[row["i"]]
        assert got.content_hash == want.content_hash


def test_few_leftover_lines_skip_the_duckdb_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    odd = line('"metric": "m"', '"event_id": "e9"', '"customer_id": "c1"', TS)  # keys reordered
    lines = [line(BASE, TS, '"quantity": 5'), odd]
    monkeypatch.setattr(fastlane, "DUCKDB_LANE_MIN_LINES", 2)
    assert fastlane.validate_many(lines, LANDING).slow == [1]
    monkeypatch.setattr(fastlane, "DUCKDB_LANE_MIN_LINES", 1)
    assert fastlane.validate_many(lines, LANDING).slow == []


def test_first_occurrence_flags_follow_input_order() -> None:
    a = line('"event_id": "dup"', '"customer_id": "c1", "metric": "m"', TS)
    b = line('"event_id": "dup"', '"customer_id": "c1", "metric": "m"', TS, '"quantity": 1.5')
    c = line('"event_id": "other"', '"customer_id": "c1", "metric": "m"', TS)
    batch = Batch(source="test", landing_time=LANDING)
    for number, raw in enumerate([b, a, c, a], start=1):
        batch.add(raw, f"test:{number}")
    table = batch.validate().events
    assert table.column("is_first").to_pylist() == [True, False, True, False]
    assert table.column("quantity_text").to_pylist() == ["1.5", "1", "1", "1"]


def _batch_events(lines: list[bytes]) -> list[Event]:
    batch = Batch(source="test", landing_time=LANDING)
    for number, raw in enumerate(lines, start=1):
        batch.add(raw, f"test:{number}")
    return batch.validate().as_events()


def _fixed_lane(lines: list[bytes], with_index: bool = False) -> list:
    """What the fixed-form lane alone accepts from `lines`, as Events (or as
    (line index, Event) pairs)."""
    texts, data, offsets = fastlane._as_utf8(fastlane.Lines.of(lines))
    rows = np.flatnonzero(fixedform.fixed_form_mask(texts))
    limit = LANDING + FUTURE_TOLERANCE
    table = fastlane._fixed_form(data, offsets, rows, limit)
    events = [
        (r["i"], Event(r["event_id"], r["customer_id"], r["metric"], r["event_ts"],
                       Decimal(r["quantity_text"]), r["properties"], r["properties_text"],
                       r["properties_num"], r["content_hash"]))
        for r in table.to_pylist()
    ]  # fmt: skip
    return events if with_index else [event for _, event in events]


def test_the_properties_cache_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """It was bounded only in entries (200k): distinct 16 KiB properties objects could make it
    hold gigabytes per worker."""
    monkeypatch.setattr(fastlane, "_FORMS", {})
    monkeypatch.setattr(fastlane, "_forms_bytes", 0)
    monkeypatch.setattr(fastlane, "_FORMS_BYTES_LIMIT", 100_000)
    big = ["{" + f'"k": "{i:05d}{"x" * 10_000}"' + "}" for i in range(40)]
    for start in range(0, len(big), 4):
        table = fastlane._canonical_props(big[start : start + 4])
        assert table.num_rows == 4  # every object is still canonicalized
        held = sum(len(k or "") + sum(map(len, v or ())) for k, v in fastlane._FORMS.items())
        assert held <= 100_000 + 4 * 2 * 10_020  # the limit plus at most one call's objects
    assert len(fastlane._FORMS) < len(big)


@pytest.mark.parametrize("in_duckdb_from", [0, 10**9], ids=["duckdb", "hashlib"])
def test_content_hashes_are_md5_in_both_ways_of_computing_them(
    monkeypatch: pytest.MonkeyPatch, in_duckdb_from: int
) -> None:
    """A large batch hashes in DuckDB, a small one with hashlib: the same digests (RFC 1321's
    test vectors), nulls kept."""
    monkeypatch.setattr(fastlane, "MD5_IN_DUCKDB_MIN", in_duckdb_from)
    digests = fastlane.md5_digests(pa.array(["", "abc", None, "message digest"]))
    assert [d.hex() if d else d for d in digests.to_pylist()] == [
        "d41d8cd98f00b204e9800998ecf8427e", "900150983cd24fb0d6963f7d28e17f72", None,
        "f96b697d7cb7938d525a2f31aaf161d0",
    ]  # fmt: skip
