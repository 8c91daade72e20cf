"""A request body as the events it holds, each as the exact text the client sent.

Why exact text: the landing path validates the bytes of one message (landing/validation.py),
and a quantity like 0.1000000001 must reach it digit for digit. Parsing the body into Python
objects and serializing them again would turn such numbers into floats. So a JSON array is
walked element by element with the standard decoder's `raw_decode` (numbers parsed as
Decimal, only to find where each element ends), and each element's own slice of the body is
what is validated and produced. NDJSON is split by lines and not parsed here at all: the
validation parses each event anyway, and a line that is not JSON is one rejected event, not a
bad body. Only a rejected event is parsed again, for the event_id the answer names.
"""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")
_DECODER = json.JSONDecoder(parse_float=Decimal)
_WHITESPACE = " \t\n\r"


class BodyError(Exception):
    """The body as a whole cannot be read: answered 400/413/415 (problem+json)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


async def read(receive: Receive, declared_length: str, limit: int) -> bytes:
    """An ASGI request's body, refused with 413 as soon as it passes `limit` (never read whole
    first), or at once when its Content-Length (`declared_length`) says it would."""
    if declared_length.isdigit() and int(declared_length) > limit:
        raise BodyError(413, "Body too large", f"{declared_length} bytes; the limit is {limit}")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyError(413, "Body too large", f"over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def split_events(body: bytes, content_type: str | None, max_events: int) -> list[bytes]:
    """The events of a body (each its exact text): one JSON object, a JSON array of them, or
    NDJSON (blank lines skipped, as when a file is landed)."""
    kind = media_type(content_type)
    if kind not in JSON_TYPES + NDJSON_TYPES:
        raise BodyError(
            415, "Unsupported media type",
            f"send application/json (one event or an array) or application/x-ndjson, "
            f"not {kind or 'no Content-Type'}",
        )  # fmt: skip
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, "Malformed body", f"not UTF-8 (byte {exc.start})") from None
    if kind in NDJSON_TYPES:
        events = [line for line in body.split(b"\n") if line.strip()]
    else:
        events = [piece.encode("utf-8") for piece in _json_elements(text)]
    if not events:
        raise BodyError(400, "No events", "the body holds no event")
    if len(events) > max_events:
        raise BodyError(
            413, "Too many events",
            f"{len(events)} events in one request; the limit is {max_events}",
        )  # fmt: skip
    return events


def event_id(raw: bytes) -> str | None:
    """An event's event_id when it can be read (for the answer about a rejected event)."""
    try:
        doc = json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    value = doc.get("event_id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def _json_elements(text: str) -> list[str]:
    """The exact text of each element of a JSON array body, or of the one value."""
    start = _skip(text, 0)
    if start == len(text):
        return []
    if text[start] == "{" and _is_json(text):  # one event, the common single-event body
        return [text.strip(_WHITESPACE)]
    if text[start] != "[":
        _value, end = _decode(text, start, "the body")
        if _skip(text, end) != len(text):
            raise BodyError(400, "Malformed JSON", f"unexpected data after the value at {end}")
        return [text[start:end]]
    elements: list[str] = []
    position = _skip(text, start + 1)
    if position < len(text) and text[position] == "]":
        position += 1
    else:
        while True:
            _value, end = _decode(text, position, f"element {len(elements)}")
            elements.append(text[position:end])
            position = _skip(text, end)
            if position < len(text) and text[position] == ",":
                position = _skip(text, position + 1)
                continue
            if position < len(text) and text[position] == "]":
                position += 1
                break
            raise BodyError(400, "Malformed JSON", f"expected , or ] at character {position}")
    if _skip(text, position) != len(text):
        raise BodyError(400, "Malformed JSON", f"unexpected data after the array at {position}")
    return elements


def _is_json(text: str) -> bool:
    """Whether orjson reads the whole text as JSON. orjson is stricter than the standard
    decoder (no NaN, nesting up to 1,024, 64-bit numbers), so what it reads the standard
    decoder reads too and the text is one value; what it refuses takes the slower walk,
    which tells apart a malformed body from a value orjson cannot hold. ~10x cheaper than
    decoding numbers as Decimal only to find where the value ends."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _decode(text: str, position: int, what: str) -> tuple[object, int]:
    try:
        return _DECODER.raw_decode(text, position)
    except json.JSONDecodeError as exc:
        raise BodyError(
            400, "Malformed JSON", f"{what}: {exc.msg} at character {exc.pos}"
        ) from None
    except RecursionError:
        raise BodyError(400, "Malformed JSON", f"{what}: nested too deeply") from None


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position
