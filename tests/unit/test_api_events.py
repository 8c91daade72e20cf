"""POST /v1/events as the plain ASGI route in front of FastAPI (ingestion/api/events.py), called
in process: the same answers as the FastAPI route it replaced (202, and problem+json naming
each refusal with its headers), the request id, metrics and OpenAPI entry it keeps. (The real
server, broker and warehouse: tests/integration/test_api.py.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from ingestion.api import telemetry
from ingestion.api.app import create_app, docs_page
from ingestion.api.delivery import NotAcknowledged
from ingestion.api.keys import KeyVerifier, create_key
from ingestion.api.ratelimit import RateLimiter
from ingestion.api.rejects import RejectWriter
from ingestion.api.services import Services
from ingestion.api.settings import ApiSettings
from ingestion.landing.sinks import backends
from ingestion.warehouse import fetch, resolve

EVENT = {"event_id": "e1", "customer_id": "cus_1", "metric": "api_calls",
         "timestamp": "2026-11-10T12:00:00Z", "quantity": "0.100000001"}  # fmt: skip


class Producer:
    """Acknowledges at once, or refuses when `down`; keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.down = False

    async def send(self, messages: Any, timeout: float) -> None:
        if self.down:
            raise NotAcknowledged("no acknowledgement within 5 s")
        self.sent += messages

    def close(self, timeout: float = 10.0) -> int:
        return 0


@pytest.fixture
def server(tmp_path: Path) -> Any:
    config = resolve(f"duckdb:///{tmp_path}/warehouse.duckdb")
    _id, writer = create_key(config, "w", ["events:write"], requests_per_second=3)
    _id, reader = create_key(config, "r", ["usage:read"])
    with backends.open_sink(config):
        pass
    settings = ApiSettings(max_events=3, max_body_bytes=2048, burst=1)
    producer = Producer()
    services = Services(settings=settings, warehouse=config, keys=KeyVerifier(config),
                        limiter=RateLimiter(settings, clock=lambda: 1000.5), producer=producer,  # type: ignore[arg-type]
                        rejects=RejectWriter(config), topic="t", dlq_topic="t-dlq",
                        webhook_secret="")  # fmt: skip
    return create_app(lambda: services), writer, reader, producer, config


def _call(app: Any, requests: list[tuple[str, str, dict[str, str], bytes]]) -> list[tuple]:
    """(status, headers, JSON body) of each request, sent in turn within one app lifespan."""

    async def one(method: str, path: str, headers: dict[str, str], data: bytes) -> tuple:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80),
                 "headers": [(k.lower().encode(), v.encode())
                             for k, v in headers.items()]}  # fmt: skip
        chunks = [data[:10], data[10:]]
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict:
            if chunks:
                chunk = chunks.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
            else:
                answer["body"] += message.get("body", b"")

        await app(scope, receive, send)
        return answer["status"], answer["headers"], json.loads(answer["body"] or b"null")

    async def run() -> list[tuple]:
        async with app.router.lifespan_context(app):
            return [await one(*request) for request in requests]

    return asyncio.run(run())


def _post(token: str | None, data: bytes, content_type: str = "application/json",
          **extra: str) -> tuple[str, str, dict[str, str], bytes]:  # fmt: skip
    headers = {"Content-Type": content_type, **extra}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return ("POST", "/v1/events", headers, data)


def test_events_are_answered_as_before(server: Any) -> None:
    app, writer, _reader, producer, config = server
    bad = dict(EVENT, event_id="e2", metric="Bad Metric")
    [accepted, rejected] = _call(app, [
        _post(writer, json.dumps(EVENT).encode(), **{"X-Request-ID": "req-1"}),
        _post(writer, b"\n".join(json.dumps(e).encode() for e in (EVENT, bad)),
              "application/x-ndjson"),
    ])  # fmt: skip
    status, headers, content = accepted
    assert (status, content) == (202, {"accepted": 1, "rejected": [], "request_id": "req-1"})
    assert headers["content-type"] == "application/json" and headers["x-request-id"] == "req-1"
    assert producer.sent[0].value == json.dumps(EVENT).encode()  # the exact text, produced
    status, headers, content = rejected
    assert status == 202 and content["accepted"] == 1
    assert [(r["index"], r["event_id"], r["rule"]) for r in content["rejected"]] == [
        (1, "e2", "metric.invalid")]  # fmt: skip
    assert content["request_id"] == headers["x-request-id"]  # made by the server
    assert fetch(config, "SELECT rule FROM raw.rejected_events") == [("metric.invalid",)]
    producer.down = True
    [(status, headers, content)] = _call(app, [_post(writer, json.dumps(EVENT).encode())])
    assert (status, content["title"], headers["retry-after"]) == (503, "Broker unavailable", "5")
    metrics = generate_latest(telemetry.REGISTRY).decode()
    assert 'valueverse_api_requests_total{method="POST",route="/v1/events",status="202"}' in metrics


def test_refusals_are_problems_with_their_headers(server: Any) -> None:
    app, writer, reader, producer, _config = server
    event = json.dumps(EVENT).encode()
    answers = _call(app, [
        _post(None, event),
        _post("vvk_" + "0" * 12 + "_nope", event),
        _post(reader, event),
        _post(writer, b"event_id=1", "text/plain"),
        _post(writer, b"[" + b" " * 3000 + b"]"),
        _post(writer, b'{"event_id": '),
        _post(writer, json.dumps([EVENT] * 4).encode()),
        ("GET", "/v1/events", {"Authorization": f"Bearer {writer}"}, b""),
        _post(writer, event),  # 3 a second: the refused ones above counted nowhere...
        _post(writer, event),
        _post(writer, event),
        _post(writer, event),  # ...so this is its fourth
    ])  # fmt: skip
    expected = [(401, "Unauthorized"), (401, "Unauthorized"), (403, "Forbidden"),
                (415, "Unsupported media type"), (413, "Body too large"), (400, "Malformed JSON"),
                (413, "Too many events"), (405, "Method Not Allowed"), (202, None),
                (202, None), (202, None), (429, "Too many requests")]  # fmt: skip
    assert [(status, content.get("title")) for status, _h, content in answers] == expected
    for status, headers, content in answers:
        if status != 202:
            assert headers["content-type"] == "application/problem+json"
            assert content["detail"] and content["request_id"] == headers["x-request-id"]
    assert answers[0][1]["www-authenticate"] == "Bearer"
    assert answers[1][1]["www-authenticate"] == 'Bearer error="invalid_token"'
    assert "events:write" in answers[2][2]["detail"]
    limited = answers[-1][1]
    assert limited["ratelimit-limit"] == "3" and int(limited["retry-after"]) >= 1


def test_the_route_is_documented(server: Any) -> None:
    app = server[0]
    spec = app.openapi()
    operation = spec["paths"]["/v1/events"]["post"]
    assert operation["summary"] == "Send usage events"
    assert {"application/json", "application/x-ndjson"} <= set(operation["requestBody"]["content"])
    assert "/v1/events" in docs_page(spec) and "/v1/customers/{customer_id}/usage" in docs_page(
        spec
    )
