"""The usage API judges events with landing's code (ingestion/api/verdicts.py): whether a request
goes through the fast lane or one event at a time, every verdict is what `validate` gives (the
customer id of a valid event, the same rule and reason for an invalid one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.api import verdicts
from ingestion.demo.generator import generate
from ingestion.landing.validation import Reject, validate
from tests.unit.test_fastlane import EDGE_CASES, LANDING


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out: Path = tmp_path_factory.mktemp("sample")
    generate(out, events=5_000, seed=11)
    sample = [raw for raw in (out / "events.jsonl").read_bytes().split(b"\n") if raw.strip()]
    return sample + EDGE_CASES


@pytest.mark.parametrize("lane", ["fast lane", "one by one"])
def test_every_verdict_is_validates(
    lines: list[bytes], lane: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verdicts, "FAST_LANE_MIN_EVENTS", 1 if lane == "fast lane" else 10**9)
    expected = []
    for raw in lines:
        verdict = validate(raw, LANDING)
        expected.append(verdict if isinstance(verdict, Reject) else verdict.customer_id)
    got = verdicts.judge(lines, LANDING)
    assert got == expected
    assert any(isinstance(v, Reject) for v in got) and any(isinstance(v, str) for v in got)
