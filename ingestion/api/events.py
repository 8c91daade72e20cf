"""POST /v1/events as a plain ASGI route, in front of FastAPI.

Why not a FastAPI route like the others: this is the route that takes the load (1,000
single-event requests a second and more), and for a one-event request FastAPI's part (its
exception middleware, routing, building a Request, running the endpoint, a JSONResponse) was
a large share of what the server spent (profiled). Here the request is answered from the ASGI
scope directly, with the same answers: 202 with what was accepted and rejected, problem+json
for every refusal. It runs inside the app's `_Observe` (request id, span, metrics, log line)
and under Starlette's error middleware (a bug is still a logged 500). FastAPI does not see the
route, so its OpenAPI entry (OPERATION) is added to the app's document by `create_app`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ingestion.api import body, telemetry
from ingestion.api.access import PROBLEM, Problem, authenticate, limit, problem_content, require
from ingestion.api.delivery import Message, NotAcknowledged
from ingestion.api.keys import ApiKey
from ingestion.api.rejects import RejectBatch
from ingestion.api.services import Services
from ingestion.api.verdicts import judge
from ingestion.landing import tracing
from ingestion.landing.batch import reject_row
from ingestion.landing.dlq import reject_headers
from ingestion.landing.sinks.contract import RejectRow
from ingestion.landing.validation import Reject

PATH = "/v1/events"
RETRY_SECONDS = 5
SUMMARY = "Send usage events"
DESCRIPTION = (
    "One event (JSON object), a JSON array, or NDJSON: up to the server's limits (1,000 events, "
    "1 MiB by default). 202 once the broker acknowledged every valid event; invalid ones are "
    "listed and written to the dead-letter topic."
)


class _Route:
    """What `_Observe` labels the request's metrics and log line with (as a Starlette route)."""

    path = PATH


ROUTE = _Route()


_PROBLEM_RESPONSE = {"description": "refused: a problem+json document says why",
                     "content": {PROBLEM: {"schema": {"type": "object"}}}}  # fmt: skip
OPERATION: dict[str, Any] = {
    "summary": SUMMARY,
    "description": DESCRIPTION,
    "operationId": "post_events_v1_events_post",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    },  # fmt: skip
    "responses": {
        "202": {
            "description": "every valid event acknowledged by the broker; the others rejected",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "accepted": {"type": "integer"},
                            "rejected": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "index": {"type": "integer"},
                                        "event_id": {"type": ["string", "null"]},
                                        "rule": {"type": "string"},
                                        "reason": {"type": "string"},
                                    },
                                },
                            },
                            "request_id": {"type": "string"},
                        },
                    }
                }
            },
        },  # fmt: skip
        **{str(status): _PROBLEM_RESPONSE for status in (400, 401, 403, 405, 413, 415, 429, 503)},
    },
}


class EventsRoute:
    """Answers POST /v1/events (any other method there: 405); passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTE
        state = scope.setdefault("state", {})
        try:
            if scope["method"] != "POST":
                raise Problem(405, "Method Not Allowed", "Method Not Allowed", {"Allow": "POST"})
            payload = await _post_events(scope["app"].state.services, scope, receive, state)
        except Problem as exc:
            content = problem_content(exc.status, exc.title, exc.detail, state.get("request_id"))
            await _answer(send, exc.status, PROBLEM, content, exc.headers)
        except body.BodyError as exc:
            content = problem_content(exc.status, exc.title, exc.detail, state.get("request_id"))
            await _answer(send, exc.status, PROBLEM, content)
        else:
            await _answer(send, 202, "application/json", payload)


async def _post_events(services: Services, scope: Scope, receive: Receive,
                       state: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The request's key checked, its events judged, produced and acknowledged: the answer.
    The request counts as a request and as its events, both at once (one round trip to the
    limits' store), once its body is split."""
    headers = {name: value for name, value in scope["headers"]
               if name in (b"authorization", b"content-type", b"content-length")}  # fmt: skip
    key = await authenticate(services.keys, headers.get(b"authorization", b"").decode("latin-1"))
    state["key_id"] = key.key_id
    require(key, "events:write")
    settings = services.settings
    raw = await body.read(receive, headers.get(b"content-length", b"").decode("latin-1"),
                          settings.max_body_bytes)  # fmt: skip
    content_type = headers.get(b"content-type")
    events = body.split_events(raw, content_type.decode("latin-1") if content_type else None,
                               settings.max_events)  # fmt: skip
    await limit(services.limiter, key, {"requests": 1, "events": len(events)})
    origin = f"api:{key.key_id}/{state['request_id']}"
    landed_at = datetime.now(UTC).replace(tzinfo=None)
    accepted, rejected, rows, messages = _sort_events(services, key, events, origin, landed_at)
    started = time.perf_counter()
    try:
        await services.producer.send(messages, settings.produce_timeout)
    except NotAcknowledged as exc:
        raise Problem(503, "Broker unavailable",
                      f"{exc}; nothing of this request is confirmed, send it again "
                      "(events are deduplicated by event_id)",
                      {"Retry-After": str(RETRY_SECONDS)}) from None  # fmt: skip
    telemetry.PRODUCE.observe(time.perf_counter() - started)
    if rows:  # once the dead letters are safe, for the quality report to count (rejects.py)
        services.rejects.submit(RejectBatch(f"api:{key.key_id}", rows, landed_at))
    telemetry.EVENTS.labels("accepted", "").inc(accepted)
    for entry in rejected:
        telemetry.EVENTS.labels("rejected", entry["rule"]).inc()
    return {"accepted": accepted, "rejected": rejected, "request_id": state["request_id"]}


async def _answer(send: Send, status: int, media_type: str, content: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:  # fmt: skip
    payload = orjson.dumps(content)
    raw_headers = [(b"content-length", str(len(payload)).encode()),
                   (b"content-type", media_type.encode())]  # fmt: skip
    raw_headers += [(name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in (headers or {}).items()]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _sort_events(
    services: Services, key: ApiKey, events: list[bytes], origin: str, now: datetime
) -> tuple[int, list[dict[str, Any]], list[RejectRow], list[Message]]:
    """Judge each event by the landing rules (verdicts.py) and the key's customers: the
    messages to produce (valid ones to the usage topic, the others to the dead letters) and
    the rejects to report and record."""
    trace = tracing.message_headers()
    # the same for every valid event of the request (the producer copies them)
    headers: list[tuple[str, str | bytes | None]] = [("valueverse.origin", origin.encode()),
                                                     *trace]  # fmt: skip
    accepted, rejected, rows, messages = 0, [], [], []
    for index, (raw, verdict) in enumerate(zip(events, judge(events, now), strict=True)):
        if not isinstance(verdict, Reject) and not key.allows_customer(verdict):
            detail = f"this API key may not send events for customer {verdict}"
            verdict = Reject("auth.customer_scope", detail)
        if isinstance(verdict, Reject):
            row = reject_row(f"{origin}#{index}", raw, verdict)
            rows.append(row)
            rejected.append({"index": index, "event_id": body.event_id(raw),
                             "rule": verdict.rule, "reason": verdict.detail})  # fmt: skip
            messages.append(
                Message(services.dlq_topic, row.payload, None, [*reject_headers(row), *trace])
            )
            continue
        accepted += 1
        messages.append(Message(services.topic, raw, verdict.encode(), headers))
    return accepted, rejected, rows, messages
