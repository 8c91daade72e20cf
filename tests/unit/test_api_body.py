"""How the usage API reads a request body into events (ingestion/api/body.py): each event's
exact text, whatever the framing, and a named error for a body that cannot be read."""

from __future__ import annotations

import pytest

from ingestion.api.body import BodyError, event_id, split_events

ONE = b'{"event_id": "e1", "quantity": 0.100000001}'
TWO = b'{"event_id": "e2", "quantity": 1E+2, "properties": {"a": [1, {"b": "]"}]}}'


def test_an_array_is_split_into_the_exact_text_of_each_element() -> None:
    """Numbers keep their digits and spelling: re-serializing would make 0.100000001 a float."""
    body = b"[ " + ONE + b" ,\n" + TWO + b" ]"
    assert split_events(body, "application/json; charset=utf-8", 10) == [ONE, TWO]


def test_one_object_and_ndjson_lines() -> None:
    assert split_events(ONE, "application/json", 10) == [ONE]
    ndjson = ONE + b"\n\n" + TWO + b"\n"
    assert split_events(ndjson, "application/x-ndjson", 10) == [ONE, TWO]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "title"),
    [
        (b'{"event_id": ', "application/json", 400, "Malformed JSON"),
        (b"[" + ONE + b" " + TWO + b"]", "application/json", 400, "Malformed JSON"),
        (ONE + b" trailing", "application/json", 400, "Malformed JSON"),
        (b"[" * 100_000, "application/json", 400, "Malformed JSON"),
        (b"\xff\xfe", "application/json", 400, "Malformed body"),
        (b"   ", "application/json", 400, "No events"),
        (ONE, "text/plain", 415, "Unsupported media type"),
        (ONE, None, 415, "Unsupported media type"),
        (b"[" + b",".join([ONE] * 4) + b"]", "application/json", 413, "Too many events"),
    ],
)
def test_unreadable_bodies_are_named(
    body: bytes, content_type: str | None, status: int, title: str
) -> None:
    with pytest.raises(BodyError) as raised:
        split_events(body, content_type, 3)
    assert (raised.value.status, raised.value.title) == (status, title)
    assert raised.value.detail


def test_the_event_id_of_an_answer() -> None:
    assert event_id(ONE) == "e1"
    assert event_id(b"not json") is None and event_id(b'{"event_id": 7}') is None
