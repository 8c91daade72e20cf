"""`valueverse events load` end to end, on a real DuckDB file and a real PostgreSQL database.

What is checked (dbt/docs/contract.md section 1, cli.md):
- every conformance scenario prints exactly its `expect` counts, and a reload adds
  only duplicates (tables unchanged);
- rejects keep their raw bytes, rule, detail and `file:<abs path>:<line>` origin;
- first write wins, conflicts are kept with their content (same batch, later batch,
  later call; property types included), duplicates are recognised by value, a
  rejected line never claims its event_id;
- landed properties are the JSON maps rating reads (ingestion/landing/raw_ddl.py);
- several files per call (also one file twice), missing files and directories,
  blank lines and CRLF, U+0000 in a property and a line that is not UTF-8;
- a generated file of 60k events (> 4 MiB, so the worker-process path) lands with
  exactly the generator's expected counts, and the same rows as the inline path.

Where the code and the spec disagree, the test asserts the SPEC.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml

from ingestion.demo.generator import GenerationSummary, generate
from ingestion.landing.files import INLINE_BELOW_BYTES, load_files
from tests.conftest import CLI, CliResult, query, run_cli, scenario_dirs, scratch_pg

SCENARIOS = scenario_dirs()
SCENARIO_07 = next(p for p in SCENARIOS if p.name.startswith("07_"))
COUNT_KEYS = ["accepted", "duplicates", "conflicts", "rejected"]


# --------------------------------------------------------------------------- helpers


def scalar(url: str, sql: str):
    return query(url, sql)[0][0]


def as_json(url: str, value) -> object:
    """A JSON column as a Python value.

    DuckDB returns a JSON column as its text; psycopg returns jsonb already parsed
    (so a `str` from PostgreSQL is a JSON string scalar, not an object's text).
    """
    return json.loads(value) if url.startswith("duckdb://") else value


def table_counts(url: str) -> dict[str, int]:
    tables = ["raw.events", "raw.event_conflicts", "raw.rejected_events"]
    if not url.startswith("duckdb://"):
        tables.append("raw.event_ids")
    return {t: scalar(url, f"SELECT count(*) FROM {t}") for t in tables}


def counts_line(result: CliResult) -> dict[str, int]:
    """The last stdout line, which the contract says is the JSON counts object."""
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr}"
    last = result.stdout.splitlines()[-1]
    got = json.loads(last)
    assert list(got) == COUNT_KEYS, f"keys of {last!r}"
    assert all(type(v) is int for v in got.values()), last
    return got


def counts(accepted=0, duplicates=0, conflicts=0, rejected=0) -> dict[str, int]:
    return dict(accepted=accepted, duplicates=duplicates, conflicts=conflicts, rejected=rejected)


def load(url: str, *args: str, cwd: Path | None = None) -> dict[str, int]:
    return counts_line(run_cli(url, "events", "load", *args, cwd=cwd))


def ev(event_id: str, **fields) -> str:
    """One JSON line: a valid event whose fields are overridden by `fields`."""
    doc = {
        "event_id": event_id,
        "customer_id": "cus_t",
        "metric": "api_calls",
        "timestamp": "2026-10-03T10:00:00Z",
    }
    doc.update(fields)
    return json.dumps(doc, ensure_ascii=False)


def ev_raw(event_id: str, extra: str) -> str:
    """A valid event with `extra` raw JSON members (number forms json.dumps cannot write)."""
    return (
        f'{{"event_id": "{event_id}", "customer_id": "cus_t", "metric": "api_calls", '
        f'"timestamp": "2026-10-03T10:00:00Z", {extra}}}'
    )


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def origin(path: Path, line: int) -> str:
    return f"file:{path.resolve()}:{line}"


def events_by_id(url: str) -> dict[str, tuple]:
    rows = query(
        url,
        "SELECT event_id, customer_id, metric, event_ts, quantity, origin, batch_id "
        "FROM raw.events ORDER BY event_id",
    )
    return {r[0]: r[1:] for r in rows}


def conflict_rows(url: str) -> list[tuple]:
    """(event_id, customer_id, metric, event_ts, quantity, properties, origin), sorted."""
    rows = query(
        url,
        "SELECT event_id, customer_id, metric, event_ts, quantity, "
        "properties, origin FROM raw.event_conflicts",
    )
    return sorted((r[:5] + (as_json(url, r[5]), r[6]) for r in rows), key=conflict_key)


def conflict_key(row: tuple) -> tuple:
    return row[:5] + (json.dumps(row[5], sort_keys=True), row[6])


@contextmanager
def second_warehouse(url: str, tmp_path: Path) -> Iterator[str]:
    if url.startswith("duckdb://"):
        yield f"duckdb:///{tmp_path}/second.duckdb"
    else:
        with scratch_pg() as other:
            yield other


T0 = datetime(2026, 10, 3, 10, 0, 0)  # the default event time, naive UTC


# --------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_scenario_counts_then_reload_adds_only_duplicates(warehouse_url: str, scenario: Path):
    expect = yaml.safe_load((scenario / "scenario.yml").read_text())["expect"]
    events = scenario / "events.jsonl"

    first = load(warehouse_url, str(events))
    assert first == expect

    after_first = table_counts(warehouse_url)
    assert after_first["raw.events"] == expect["accepted"]
    assert (
        scalar(warehouse_url, "SELECT count(DISTINCT event_id) FROM raw.events")
        == expect["accepted"]
    )
    assert after_first["raw.rejected_events"] == expect["rejected"]
    # identical conflicting lines are stored once, so at most `conflicts` rows
    assert (expect["conflicts"] > 0) <= after_first["raw.event_conflicts"] <= expect["conflicts"]
    if "raw.event_ids" in after_first:
        assert after_first["raw.event_ids"] == expect["accepted"]

    second = load(warehouse_url, str(events))
    assert second == counts(
        accepted=0,
        duplicates=expect["accepted"] + expect["duplicates"],
        conflicts=expect["conflicts"],
        rejected=expect["rejected"],
    )
    assert table_counts(warehouse_url) == after_first


# --------------------------------------------------------------------------- rejects

# scenario 07, lines 7..18: (rule code, a piece of text the detail must show)
REJECTS_07 = {
    7: ("metric.invalid", "API-Calls"),
    8: ("quantity.range", "-1"),
    9: ("timestamp.missing", "timestamp"),
    10: ("timestamp.invalid", "2026-10-05T10:00:00"),
    11: ("timestamp.future", "2099-01-01"),
    12: ("quantity.type", "abc"),
    13: ("event_id.invalid", "evt b7"),
    14: ("properties.value_type", "object"),
    15: ("quantity.precision", "0.0000000001"),
    16: ("message.not_json", "JSON"),
    17: ("message.not_object", "object"),
    18: ("quantity.type", "true"),
}


def test_rejects_keep_raw_bytes_rule_detail_and_origin(warehouse_url: str, tmp_path: Path):
    # a relative path from another working directory: the origin must be absolute
    folder = tmp_path / "dir with space"
    folder.mkdir()
    events = folder / "events.jsonl"
    shutil.copyfile(SCENARIO_07 / "events.jsonl", events)
    lines = events.read_bytes().split(b"\n")

    got = load(warehouse_url, "events.jsonl", cwd=folder)
    assert got == counts(accepted=4, duplicates=1, conflicts=1, rejected=12)

    rows = query(
        warehouse_url,
        "SELECT origin, raw_payload, rule, detail, batch_id, payload_hash FROM raw.rejected_events",
    )
    assert len(rows) == 12
    by_origin = {r[0]: r for r in rows}
    assert sorted(by_origin) == sorted(origin(events, n) for n in REJECTS_07)
    batches = {r[0] for r in query(warehouse_url, "SELECT batch_id FROM raw.ingest_batches")}
    for number, (rule, shown) in REJECTS_07.items():
        _, payload, got_rule, detail, batch_id, payload_hash = by_origin[origin(events, number)]
        assert bytes(payload) == lines[number - 1], f"line {number}: raw bytes differ"
        assert got_rule == rule, f"line {number}"
        assert shown in detail, f"line {number}: detail {detail!r} does not show {shown!r}"
        assert batch_id in batches
        assert len(payload_hash) == 32
    # valid lines are not in the rejects, and landed events carry their origin too
    landed = events_by_id(warehouse_url)
    assert {k: v[4] for k, v in landed.items()} == {
        "evt_00001": origin(events, 1),
        "evt_00002": origin(events, 2),
        "evt_00003": origin(events, 3),
        "evt_00004": origin(events, 4),
    }


def test_rejected_event_never_claims_its_event_id(warehouse_url: str, tmp_path: Path):
    events = write_lines(
        tmp_path / "claims.jsonl",
        [
            ev("r1", timestamp="2099-01-01T00:00:00Z"),  # future: rejected
            ev("r1", quantity=3),  # the first valid r1: accepted
            ev("r2", quantity=-1),  # rejected
            ev("r2", quantity=4),  # accepted
            ev("r2", quantity=5),  # conflict with the accepted one, not with the reject
        ],
    )
    assert load(warehouse_url, str(events), "--batch-size", "2") == counts(
        accepted=2, conflicts=1, rejected=2
    )
    landed = events_by_id(warehouse_url)
    assert {k: (v[3], v[4]) for k, v in landed.items()} == {
        "r1": (Decimal(3), origin(events, 2)),
        "r2": (Decimal(4), origin(events, 4)),
    }


# --------------------------------------------------------------------------- first write wins

CONFLICT_LINES = [
    ev("w1", quantity=10, properties={"region": "eu"}),  # 1 accepted
    ev("w1", quantity=11, properties={"region": "eu"}),  # 2 conflict, same batch
    ev("w2", quantity=20, properties={"region": "eu"}),  # 3 accepted
    ev("w2", quantity=20, properties={"region": "eu"}),  # 4 duplicate, same batch
    ev("w1", quantity=12, properties={"region": "eu"}),  # 5 conflict, later batch
    ev("w2", quantity=20, properties={"region": "us"}),  # 6 conflict (properties), later batch
    ev("w1", quantity=10, properties={"region": "eu"}),  # 7 duplicate, later batch
    ev("w1", quantity=11, properties={"region": "eu"}),  # 8 conflict again (same as line 2)
]


@pytest.mark.parametrize("batch_size", ["2", "100000"])
def test_first_write_wins_and_conflicts_are_kept(
    warehouse_url: str, tmp_path: Path, batch_size: str
):
    events = write_lines(tmp_path / "conflicts.jsonl", CONFLICT_LINES)
    assert load(warehouse_url, str(events), "--batch-size", batch_size) == counts(
        accepted=2, duplicates=2, conflicts=4
    )
    landed = events_by_id(warehouse_url)
    assert {k: v[:5] for k, v in landed.items()} == {
        "w1": ("cus_t", "api_calls", T0, Decimal(10), origin(events, 1)),
        "w2": ("cus_t", "api_calls", T0, Decimal(20), origin(events, 3)),
    }
    eu, us = {"region": "eu"}, {"region": "us"}
    expected_conflicts = [
        ("w1", "cus_t", "api_calls", T0, Decimal(11), eu, origin(events, 2)),
        ("w1", "cus_t", "api_calls", T0, Decimal(12), eu, origin(events, 5)),
        ("w2", "cus_t", "api_calls", T0, Decimal(20), us, origin(events, 6)),
    ]
    assert conflict_rows(warehouse_url) == expected_conflicts

    batch_rows = query(
        warehouse_url, "SELECT accepted, duplicates, conflicts, rejected FROM raw.ingest_batches"
    )
    if batch_size == "2":
        assert sorted(batch_rows) == [(0, 0, 2, 0), (0, 1, 1, 0), (1, 0, 1, 0), (1, 1, 0, 0)]
    else:
        assert batch_rows == [(2, 2, 4, 0)]

    # a later call: the winners stay, a new content is one more conflict
    later = write_lines(
        tmp_path / "later.jsonl",
        [
            ev("w1", quantity=13, properties={"region": "eu"}),
            ev("w2", quantity=20, properties={"region": "eu"}),
            ev("w2", quantity=20, properties={"region": "us"}),
        ],
    )
    assert load(warehouse_url, str(later), "--batch-size", batch_size) == counts(
        duplicates=1, conflicts=2
    )
    assert {k: v[:5] for k, v in events_by_id(warehouse_url).items()} == {
        k: v[:5] for k, v in landed.items()
    }
    assert conflict_rows(warehouse_url) == sorted(
        expected_conflicts + [("w1", "cus_t", "api_calls", T0, Decimal(13), eu, origin(later, 1))],
        key=conflict_key,
    )


@pytest.mark.parametrize("suspects", ["none", "all"])
def test_postgres_claim_paths_land_the_same(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suspects: str
):
    """RecentIds only chooses how the ledger is claimed: with no id suspected
    (the plain COPY meets claimed ids and falls back to INSERT ... ON CONFLICT)
    or every id suspected (as if every hash collided), the result is the same."""
    from ingestion.landing.sinks import postgres
    from ingestion.landing.sinks.contract import Counts
    from ingestion.warehouse import resolve

    def pick(_self: object, hashes: np.ndarray) -> np.ndarray:
        return np.arange(len(hashes)) if suspects == "all" else np.empty(0, np.int64)

    monkeypatch.setattr(postgres.RecentIds, "candidates", pick)
    events = write_lines(tmp_path / "conflicts.jsonl", CONFLICT_LINES)
    sink = postgres.PostgresSink(resolve(pg_url))
    sink.ensure_schema()
    try:
        assert load_files(sink, [events], batch_size=2, workers=1) == Counts(
            accepted=2, duplicates=2, conflicts=4
        )
        assert load_files(sink, [events], batch_size=2, workers=1) == Counts(
            duplicates=4, conflicts=4
        )
    finally:
        sink.close()
    assert {k: v[:4] for k, v in events_by_id(pg_url).items()} == {
        "w1": ("cus_t", "api_calls", T0, Decimal(10)),
        "w2": ("cus_t", "api_calls", T0, Decimal(20)),
    }
    assert query(pg_url, "SELECT event_id FROM raw.event_ids ORDER BY 1") == [("w1",), ("w2",)]
    assert len(conflict_rows(pg_url)) == 3


# --------------------------------------------------------------------------- equal by value

# (first line, later line, "duplicate" | "conflict"); both lines share an event_id
BY_VALUE = {
    "offset": (ev("v01"), ev("v01", timestamp="2026-10-03T12:00:00+02:00"), "duplicate"),
    "neg_offset": (ev("v02"), ev("v02", timestamp="2026-10-03T05:00:00-05:00"), "duplicate"),
    "zero_fraction": (ev("v03"), ev("v03", timestamp="2026-10-03T10:00:00.000Z"), "duplicate"),
    "sub_micro_truncated": (
        ev("v04", timestamp="2026-10-03T10:00:00.123456Z"),
        ev("v04", timestamp="2026-10-03T10:00:00.1234569Z"),
        "duplicate",
    ),
    "qty_string_trailing_zero": (
        ev_raw("v05", '"quantity": "12.50"'),
        ev_raw("v05", '"quantity": 12.5'),
        "duplicate",
    ),
    "qty_int_vs_float": (
        ev_raw("v06", '"quantity": 1'),
        ev_raw("v06", '"quantity": 1.0'),
        "duplicate",
    ),
    "qty_default_one": (ev("v07"), ev("v07", quantity=1), "duplicate"),
    "props_key_order": (
        ev_raw("v08", '"properties": {"a": "x", "b": 2, "c": true}'),
        '{"properties": {"c": true, "b": 2, "a": "x"}, "timestamp": "2026-10-03T10:00:00Z", '
        '"metric": "api_calls", "customer_id": "cus_t", "event_id": "v08"}',
        "duplicate",
    ),
    "prop_1_vs_1.0": (
        ev_raw("v09", '"properties": {"n": 1}'),
        ev_raw("v09", '"properties": {"n": 1.0}'),
        "duplicate",
    ),
    "prop_unicode_escape": (
        ev_raw("v10", '"properties": {"city": "Z\u00fcrich"}'),
        ev_raw("v10", '"properties": {"city": "Z\\u00fcrich"}'),
        "duplicate",
    ),
    "unknown_top_level_field": (ev("v11"), ev("v11", note="resent by client"), "duplicate"),
    "prop_1_vs_string_1": (
        ev("v12", properties={"n": 1}),
        ev("v12", properties={"n": "1"}),
        "conflict",
    ),
    "prop_1_vs_true": (
        ev("v13", properties={"n": 1}),
        ev("v13", properties={"n": True}),
        "conflict",
    ),
    "prop_string_1_vs_true": (
        ev("v14", properties={"n": "1"}),
        ev("v14", properties={"n": True}),
        "conflict",
    ),
    "qty_differs": (ev("v15", quantity="12.5"), ev("v15", quantity="12.51"), "conflict"),
    "one_second_later": (ev("v16"), ev("v16", timestamp="2026-10-03T10:00:01Z"), "conflict"),
    "other_customer": (ev("v17"), ev("v17", customer_id="cus_u"), "conflict"),
    "other_metric": (ev("v18"), ev("v18", metric="storage_gb"), "conflict"),
    "extra_property": (ev("v20"), ev("v20", properties={"k": "v"}), "conflict"),
    "all_at_once": (
        ev_raw("v21", '"quantity": "12.50", "properties": {"a": "x", "n": 1}'),
        '{"properties": {"n": 1.0, "a": "x"}, "quantity": 12.5, "metric": "api_calls", '
        '"timestamp": "2026-10-03T12:00:00+02:00", "customer_id": "cus_t", "event_id": "v21"}',
        "duplicate",
    ),
}


def test_duplicates_and_conflicts_are_decided_by_value(warehouse_url: str, tmp_path: Path):
    lines = [pair[0] for pair in BY_VALUE.values()] + [pair[1] for pair in BY_VALUE.values()]
    events = write_lines(tmp_path / "by_value.jsonl", lines)
    verdicts = Counter(pair[2] for pair in BY_VALUE.values())
    # first lines 1..N, later lines N+1..2N; batches of N+4 lines: the first four
    # pairs meet inside one batch, the others across batches
    assert len(BY_VALUE) == 20
    got = load(warehouse_url, str(events), "--batch-size", "24")
    assert scalar(warehouse_url, "SELECT count(*) FROM raw.ingest_batches") == 2
    assert got == counts(
        accepted=len(BY_VALUE), duplicates=verdicts["duplicate"], conflicts=verdicts["conflict"]
    )
    conflicting_ids = {r[0] for r in conflict_rows(warehouse_url)}
    wrong = {
        name: verdict
        for name, (first, _, verdict) in BY_VALUE.items()
        if (json.loads(first)["event_id"] in conflicting_ids) != (verdict == "conflict")
    }
    assert wrong == {}, "cases decided against the spec"
    # the winners are the first lines, stored normalized (UTC, exact decimals)
    landed = events_by_id(warehouse_url)
    assert len(landed) == len(BY_VALUE)
    for index, (name, (first, _, _)) in enumerate(BY_VALUE.items(), start=1):
        assert landed[json.loads(first)["event_id"]][4] == origin(events, index), name
    assert landed["v01"][2] == T0 and landed["v02"][2] == T0
    assert landed["v04"][2] == datetime(2026, 10, 3, 10, 0, 0, 123456)
    assert landed["v05"][3] == Decimal("12.5")
    assert landed["v07"][3] == Decimal(1)


def test_landed_properties_are_json_maps_for_rating(warehouse_url: str, tmp_path: Path):
    """raw.events keeps each event's properties as two JSON objects (ingestion/landing/raw_ddl.py,
    the
    contract with dbt): property -> text form (section 2), property -> plain decimal."""
    events = write_lines(
        tmp_path / "props.jsonl",
        [
            ev_raw(
                "p1", '"properties": {"region": "eu", "n": 1.10, "b": true, "s": "7", "e": 1e2}'
            ),
            ev("p2", properties={"region": "us"}),
            ev("p3"),
        ],
    )
    assert load(warehouse_url, str(events)) == counts(accepted=3)
    rows = {
        r[0]: (as_json(warehouse_url, r[1]), as_json(warehouse_url, r[2]))
        for r in query(
            warehouse_url, "SELECT event_id, properties_text, properties_num FROM raw.events"
        )
    }
    assert rows == {
        "p1": (
            {"b": "true", "e": "100", "n": "1.1", "region": "eu", "s": "7"},
            {"e": "100", "n": "1.1", "s": "7"},
        ),
        "p2": ({"region": "us"}, {}),
        "p3": ({}, {}),
    }


def test_conflict_is_kept_with_its_own_property_values(warehouse_url: str, tmp_path: Path):
    """raw.event_conflicts keeps the conflicting event's content by value: a conflict
    that differs only by a property's JSON type (1 vs "1" vs true) must show that type."""
    events = write_lines(
        tmp_path / "typed.jsonl",
        [
            ev("t1", properties={"n": 1, "s": "x"}),
            ev("t1", properties={"n": "1", "s": "x"}),  # conflict: string
            ev("t1", properties={"n": True, "s": "x"}),  # conflict: boolean
            ev("t2", properties={"f": "true"}),
            ev("t2", properties={"f": True}),  # conflict: boolean
            ev("t3", properties={"d": "1.50"}),
            ev("t3", properties={"d": 1.5}),  # conflict: number
        ],
    )
    assert load(warehouse_url, str(events)) == counts(accepted=3, conflicts=4)
    kept = [(r[0], r[5], r[6]) for r in conflict_rows(warehouse_url)]
    assert sorted(kept, key=lambda r: r[2]) == [
        ("t1", {"n": "1", "s": "x"}, origin(events, 2)),
        ("t1", {"n": True, "s": "x"}, origin(events, 3)),
        ("t2", {"f": True}, origin(events, 5)),
        ("t3", {"d": 1.5}, origin(events, 7)),
    ]


# --------------------------------------------------------------------------- files


def test_several_files_in_one_call_sum_their_counts(warehouse_url: str, tmp_path: Path):
    first = tmp_path / "a.jsonl"
    shutil.copyfile(SCENARIO_07 / "events.jsonl", first)  # 4 / 1 / 1 / 12
    second = write_lines(
        tmp_path / "b.jsonl",
        [
            ev("mf_1"),
            ev("mf_2", quantity=2),
            ev(
                "evt_00003", customer_id="cus_nosub", quantity=70, timestamp="2026-10-04T10:00:00Z"
            ),  # duplicate of a.jsonl line 3
            ev(
                "evt_00004",
                customer_id="cus_one",
                metric="page_views",
                quantity=71,
                timestamp="2026-10-04T10:00:00Z",
            ),  # conflict with a.jsonl line 4
            ev("mf_3", metric="Bad-Metric"),  # rejected
        ],
    )
    got = load(warehouse_url, str(first), str(second))
    assert got == counts(accepted=6, duplicates=2, conflicts=2, rejected=13)
    landed = events_by_id(warehouse_url)
    assert {k: v[4] for k, v in landed.items()} == {
        "evt_00001": origin(first, 1),
        "evt_00002": origin(first, 2),
        "evt_00003": origin(first, 3),
        "evt_00004": origin(first, 4),
        "mf_1": origin(second, 1),
        "mf_2": origin(second, 2),
    }
    assert landed["evt_00004"][3] == Decimal(70)
    rejects = dict(query(warehouse_url, "SELECT origin, rule FROM raw.rejected_events"))
    assert len(rejects) == 13
    assert rejects[origin(second, 5)] == "metric.invalid"
    assert [r[0] for r in conflict_rows(warehouse_url)] == ["evt_00002", "evt_00004"]


def test_same_file_twice_in_one_call(warehouse_url: str, tmp_path: Path):
    events = tmp_path / "events.jsonl"
    shutil.copyfile(SCENARIO_07 / "events.jsonl", events)
    got = load(warehouse_url, str(events), str(events))
    assert got == counts(accepted=4, duplicates=1 + 5, conflicts=1 + 1, rejected=12 + 12)
    assert table_counts(warehouse_url)["raw.rejected_events"] == 12
    assert table_counts(warehouse_url)["raw.events"] == 4


def test_unusual_strings_nul_character_and_invalid_utf8(warehouse_url: str, tmp_path: Path):
    """Non-ASCII property strings land; U+0000 in a property is rejected on both backends
    (PostgreSQL text and jsonb cannot hold it: a decision in dbt/DECISIONLOG.md, so the
    backends never disagree); a line that is not UTF-8 is rejected with its bytes kept."""
    lines = [
        ev("u1", properties={"p": "a\u0000b"}).encode(),  # json.dumps writes the escape
        ev("u2", properties={"p": "\u00e9\u4e2d\U0001f600"}).encode(),
        ev("u3").encode()[:-1] + b', "properties": {"p": "\xff\xfe"}}',
        ev("u4").encode(),
    ]
    events = tmp_path / "strings.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    assert b"\\u0000" in lines[0]  # the JSON escape, not a raw NUL byte
    result = run_cli(warehouse_url, "events", "load", str(events))
    assert "Traceback" not in result.stderr
    assert counts_line(result) == counts(accepted=2, rejected=2)
    landed = events_by_id(warehouse_url)
    assert sorted(landed) == ["u2", "u4"]
    text = scalar(warehouse_url, "SELECT properties_text FROM raw.events WHERE event_id = 'u2'")
    assert as_json(warehouse_url, text) == {"p": "\u00e9\u4e2d\U0001f600"}
    rejects = query(
        warehouse_url, "SELECT origin, raw_payload, rule FROM raw.rejected_events ORDER BY origin"
    )
    assert [(r[0], bytes(r[1]), r[2]) for r in rejects] == [
        (origin(events, 1), lines[0], "properties.nul_character"),
        (origin(events, 3), lines[2], "message.not_utf8"),
    ]


def _assert_nothing_landed(url: str) -> None:
    for table in ("raw.events", "raw.rejected_events", "raw.event_conflicts", "raw.ingest_batches"):
        try:
            n = scalar(url, f"SELECT count(*) FROM {table}")
        except Exception:  # the schema need not exist when nothing was landed
            continue
        assert n == 0, f"{table} has {n} rows"


@pytest.mark.parametrize("missing_first", [False, True])
def test_missing_file_exits_1_naming_it_and_lands_nothing(
    warehouse_url: str, tmp_path: Path, missing_first: bool
):
    good = tmp_path / "good.jsonl"
    shutil.copyfile(SCENARIO_07 / "events.jsonl", good)
    missing = tmp_path / "no_such_events.jsonl"
    files = [str(missing), str(good)] if missing_first else [str(good), str(missing)]
    result = run_cli(warehouse_url, "events", "load", *files)
    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(line.startswith("{") for line in result.stdout.splitlines())
    _assert_nothing_landed(warehouse_url)


def test_directory_exits_1(warehouse_url: str, tmp_path: Path):
    folder = tmp_path / "a_directory.jsonl"
    folder.mkdir()
    good = write_lines(tmp_path / "good.jsonl", [ev("d1")])
    result = run_cli(warehouse_url, "events", "load", str(good), str(folder))
    assert result.returncode == 1
    assert str(folder) in result.stderr
    assert "Traceback" not in result.stderr
    _assert_nothing_landed(warehouse_url)


def test_blank_lines_skipped_and_crlf_handled(warehouse_url: str, tmp_path: Path):
    lines = [
        ev("b1"),  # 1
        "",  # 2 blank
        ev("b2", quantity="2.5"),  # 3
        "   ",  # 4 blank (spaces only)
        "\t",  # 5 blank (tab only)
        ev("b1"),  # 6 duplicate
        '{"event_id": "b3", "customer_id": "cus_t", "metric": "api_calls"}',  # 7 rejected
        "",  # 8 blank
        ev("b4", properties={"note": "ends with a space "}),  # 9
    ]
    events = tmp_path / "crlf.jsonl"
    # CRLF everywhere, and an extra blank line at the very end
    events.write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())

    got = load(warehouse_url, str(events), "--batch-size", "3")
    assert got == counts(accepted=3, duplicates=1, rejected=1)
    landed = events_by_id(warehouse_url)
    assert {k: v[4] for k, v in landed.items()} == {
        "b1": origin(events, 1),
        "b2": origin(events, 3),
        "b4": origin(events, 9),
    }
    assert landed["b2"][3] == Decimal("2.5")
    (reject,) = query(warehouse_url, "SELECT origin, raw_payload, rule FROM raw.rejected_events")
    assert reject[0] == origin(events, 7)
    assert bytes(reject[1]) == lines[6].encode()  # the line without its CRLF terminator
    assert reject[2] == "timestamp.missing"
    # the property value keeps its own trailing space; only the terminator goes
    text = scalar(warehouse_url, "SELECT properties_text FROM raw.events WHERE event_id = 'b4'")
    assert as_json(warehouse_url, text) == {"note": "ends with a space "}

    # no final newline at all, and a file that is only blank lines
    tail = tmp_path / "no_final_newline.jsonl"
    tail.write_bytes((ev("b5") + "\r\n" + ev("b6")).encode())
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\r\n\n  \r\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert load(warehouse_url, str(empty), str(tail), str(blank)) == counts(accepted=2)
    assert events_by_id(warehouse_url)["b6"][4] == origin(tail, 2)


# --------------------------------------------------------------------------- lines over the limit

GIANT_LINE_BYTES = 64 * 1024 * 1024
KEPT = 4096  # what a reject keeps of a message over 16 KiB


def load_measured(url: str, *args: str) -> tuple[dict[str, int], int]:
    """`valueverse events load ARGS` and the peak resident memory (bytes) of the command and
    its worker processes, from a Python parent that reports RUSAGE_CHILDREN (ru_maxrss is the
    largest single descendant it waited for, in KiB on Linux)."""
    script = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:]).returncode\n"
        "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
        " file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": url}
    proc = subprocess.run([sys.executable, "-c", script, CLI, "events", "load", *args],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    peak = [line for line in result.stderr.splitlines() if line.startswith("peak_rss_kib ")]
    return counts_line(result), int(peak[-1].split()[1]) * 1024


def test_giant_line_is_skipped_in_blocks_and_kept_bounded(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A 64 MiB line used to be read whole (~800 MB resident) and stored whole in
    raw.rejected_events. Now it is skipped in fixed-size blocks: a load costs about what the
    same file without it costs (measured: a few MiB more), and its reject keeps its first
    4 KiB, naming its size. The lines around it land with their own
    line numbers; batches of 2 lines put it at the start of a chunk, and it spans many of the
    reads that find line ends. Loaded again, nothing is stored twice."""
    normal = [ev(f"g{i}").encode() for i in range(1, 6)]
    head = ev_raw("giant", '"pad": "').encode()
    giant_size = GIANT_LINE_BYTES
    path = tmp_path / "giant.jsonl"
    pad = b"x" * (1024 * 1024)
    with path.open("wb") as out:
        out.write(normal[0] + b"\n" + normal[1] + b"\n" + head)
        written = len(head)
        while written < giant_size - 2:
            piece = pad[: giant_size - 2 - written]
            out.write(piece)
            written += len(piece)
        out.write(b'"}\n' + b"\n".join(normal[2:]) + b"\n")
    baseline = write_lines(tmp_path / "baseline.jsonl", [line.decode() for line in normal])
    peaks = {}
    for name, file, workers in [("baseline", baseline, "1"), ("inline", path, "1")]:
        (tmp_path / name).mkdir()
        with second_warehouse(warehouse_url, tmp_path / name) as url:
            monkeypatch.setenv("VALUEVERSE_LOAD_WORKERS", workers)
            got, peaks[name] = load_measured(url, str(file), "--batch-size", "2")
            assert got == counts(accepted=5, rejected=int(file == path))
    monkeypatch.setenv("VALUEVERSE_LOAD_WORKERS", "2")  # 64 MiB: the worker-process path
    got, peaks["workers"] = load_measured(warehouse_url, str(path), "--batch-size", "2")
    assert got == counts(accepted=5, rejected=1)
    print("peak RSS in MiB:", {name: round(peak / 2**20) for name, peak in peaks.items()})
    assert peaks["inline"] - peaks["baseline"] < giant_size // 4, peaks
    assert peaks["workers"] - peaks["baseline"] < giant_size // 4, peaks
    assert load(warehouse_url, str(path)) == counts(duplicates=5, rejected=1)

    landed = events_by_id(warehouse_url)
    assert {k: v[4] for k, v in landed.items()} == {
        "g1": origin(path, 1), "g2": origin(path, 2), "g3": origin(path, 4),
        "g4": origin(path, 5), "g5": origin(path, 6),
    }  # fmt: skip
    (reject,) = query(
        warehouse_url, "SELECT origin, raw_payload, rule, detail FROM raw.rejected_events"
    )
    assert reject[0] == origin(path, 3)
    assert bytes(reject[1]) == (head + pad)[:KEPT]
    assert reject[2] == "message.too_large"
    assert reject[3] == (
        f"message is {giant_size} bytes, the limit is 16 KiB; only its first {KEPT} bytes are kept"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_long_lines_blank_crlf_and_last_line_worker_and_inline_paths(
    warehouse_url: str, tmp_path: Path, workers: str, monkeypatch: pytest.MonkeyPatch
):
    """Lines over 16 KiB are never read whole, and what is decided about them is what is
    decided about any line: a blank one (whitespace only) is skipped, one that is short once
    its trailing \\r are stripped lands, and the others are rejected keeping their first
    4 KiB, also a last line without a newline. A 5 MiB line makes the file big enough for the
    worker processes (workers=2); batches of 2 lines put the long ones at both ends of a
    chunk."""
    prefix_is_an_event = ev("k2") + " " * 20_000  # its first 4 KiB alone would be valid
    junk = "{" + "x" * (5 * 1024 * 1024)
    last = "y" * 20_000
    lines = [
        ev("k1"),  # 1
        prefix_is_an_event,  # 2: rejected
        " " * 30_000,  # 3: blank
        ev("k3") + "\r" * 20_000,  # 4: lands, like any line with \r before its newline
        junk,  # 5: rejected
        ev("k4") + "\r",  # 6
    ]
    path = tmp_path / "long.jsonl"
    path.write_bytes(("\n".join(lines) + "\n" + last).encode())  # 7: no newline, rejected
    monkeypatch.setenv("VALUEVERSE_LOAD_WORKERS", workers)
    assert path.stat().st_size >= INLINE_BELOW_BYTES

    assert load(warehouse_url, str(path), "--batch-size", "2") == counts(accepted=3, rejected=3)
    landed = events_by_id(warehouse_url)
    assert {k: v[4] for k, v in landed.items()} == {
        "k1": origin(path, 1), "k3": origin(path, 4), "k4": origin(path, 6),
    }  # fmt: skip
    rejects = query(
        warehouse_url,
        "SELECT origin, raw_payload, rule, detail FROM raw.rejected_events ORDER BY origin",
    )
    expected = [(2, prefix_is_an_event), (5, junk), (7, last)]
    assert [(r[0], bytes(r[1]), r[2]) for r in rejects] == [
        (origin(path, n), line.encode()[:KEPT], "message.too_large") for n, line in expected
    ]
    for row, (_n, line) in zip(rejects, expected, strict=True):
        assert row[3].startswith(f"message is {len(line.encode())} bytes, the limit is 16 KiB")


# --------------------------------------------------------------------------- a larger file

BIG_EVENTS = 60_000
BIG_SEED = 7
BIG_BATCH = "10000"  # several batches in flight, so dedup crosses batch borders


@pytest.fixture(scope="module")
def big_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    out = tmp_path_factory.mktemp("big")
    result = run_cli(
        f"duckdb:///{out}/unused.duckdb",
        "sample",
        "generate",
        "--out-dir",
        str(out),
        "--events",
        str(BIG_EVENTS),
        "--seed",
        str(BIG_SEED),
    )
    assert result.returncode == 0, result.stderr
    cli_bytes = (out / "events.jsonl").read_bytes()
    # the same arguments in-process give the same bytes, and the summary the CLI printed
    summary = generate(out, events=BIG_EVENTS, seed=BIG_SEED)
    assert (out / "events.jsonl").read_bytes() == cli_bytes
    assert result.stdout.strip() == str(summary)
    assert summary.events == BIG_EVENTS
    assert summary.duplicates > 0 and summary.conflicts > 0 and summary.invalid > 0
    assert summary.accepted + summary.duplicates + summary.conflicts + summary.invalid == (
        BIG_EVENTS
    )
    assert len(cli_bytes) >= INLINE_BELOW_BYTES, "too small for the worker-process path"
    return out / "events.jsonl", summary


def _landed_state(url: str) -> dict[str, object]:
    return {
        "events": sorted(
            query(url, "SELECT event_id, content_hash, origin, event_ts, quantity FROM raw.events")
        ),
        "conflicts": sorted(
            query(url, "SELECT event_id, content_hash, origin FROM raw.event_conflicts")
        ),
        "rejects": sorted(query(url, "SELECT origin, rule, payload_hash FROM raw.rejected_events")),
    }


def test_big_file_worker_path_exact_counts_and_same_as_inline(
    warehouse_url: str, tmp_path: Path, big_sample, monkeypatch: pytest.MonkeyPatch
):
    events, summary = big_sample
    expected = summary.expected_counts()

    monkeypatch.setenv("VALUEVERSE_LOAD_WORKERS", "2")  # file >= 4 MiB: worker processes
    got = load(warehouse_url, str(events), "--batch-size", BIG_BATCH)
    assert got == expected
    assert scalar(warehouse_url, "SELECT count(*) FROM raw.events") == summary.accepted
    assert scalar(warehouse_url, "SELECT count(DISTINCT event_id) FROM raw.events") == (
        summary.accepted
    )
    assert scalar(warehouse_url, "SELECT count(*) FROM raw.ingest_batches") == 6
    assert scalar(warehouse_url, "SELECT sum(accepted) FROM raw.ingest_batches") == summary.accepted
    rules = Counter(r[0] for r in query(warehouse_url, "SELECT rule FROM raw.rejected_events"))
    assert dict(rules) == summary.invalid_rules
    workers_state = _landed_state(warehouse_url)

    monkeypatch.setenv("VALUEVERSE_LOAD_WORKERS", "1")  # the inline path
    with second_warehouse(warehouse_url, tmp_path) as inline_url:
        assert load(inline_url, str(events), "--batch-size", BIG_BATCH) == expected
        inline_state = _landed_state(inline_url)
    assert inline_state["events"] == workers_state["events"]
    assert inline_state["conflicts"] == workers_state["conflicts"]
    assert inline_state["rejects"] == workers_state["rejects"]


def test_events_spread_over_centuries_land_without_a_partition_per_month(
    pg_url: str, tmp_path: Path
) -> None:
    """300 events, one per month of 1700-1724, used to create 300 partitions (and indexes) in
    one transaction; a batch over enough months exhausted the lock table and was retried
    forever. Months far from the landing month share the DEFAULT partition instead."""
    path = tmp_path / "old.jsonl"
    lines = [
        {"event_id": f"old-{i}", "customer_id": "c", "metric": "m", "quantity": 1,
         "timestamp": f"{1700 + i // 12:04d}-{i % 12 + 1:02d}-15T00:00:00Z"}
        for i in range(300)
    ]  # fmt: skip
    lines.append({"event_id": "now", "customer_id": "c", "metric": "m",
                  "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")})  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert load(pg_url, str(path)) == counts(accepted=301)
    partitions = query(
        pg_url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'raw.events'::regclass ORDER BY 1",
    )
    assert len(partitions) == 2 and partitions[0] == ("events_other",)
    assert scalar(pg_url, "SELECT count(*) FROM raw.events_other") == 300
    assert scalar(pg_url, "SELECT count(*) FROM raw.events WHERE event_ts < '1725-01-01'") == 300
