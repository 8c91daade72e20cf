"""The usage API as a real server process (`valueverse api serve`) with the Kafka-protocol
broker, PostgreSQL and Redis: keys and scopes, limits, rejects in the answer and the dead
letters, rate limits shared by two servers, readiness, the broker stopping, and the public
scenarios posted through the API landing exactly like `events load`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ingestion.demo.broker import LocalBroker, free_port, start_broker
from tests.conftest import CLI, query, run_cli, scenario_dirs
from tests.integration.kafka_support import (
    broker_fixture,  # noqa: F401 (fixture)
    kafka_env_fixture,  # noqa: F401 (fixture)
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.kafka
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: dict

    @property
    def problem(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/problem+json")


def call(
    base: str,
    method: str,
    path: str,
    token: str | None = None,
    data: bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, got, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, got, raw = exc.code, dict(exc.headers), exc.read()
    headers_lower = {k.lower(): v for k, v in got.items()}
    return Reply(status, headers_lower, json.loads(raw) if raw else {})


@contextmanager
def api_server(url: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """A `valueverse api serve` process; yields its base URL once /healthz answers."""
    port = free_port()
    full = {**os.environ, **env, "VALUEVERSE_WAREHOUSE": url}
    with log.open("ab") as err:
        proc = subprocess.Popen([CLI, "api", "serve", "--port", str(port)], env=full,
                                stdout=err, stderr=err)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(base, "GET", "/healthz").status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def make_key(url: str, *args: str) -> tuple[str, str]:
    """(key id, token) of a new key."""
    result = run_cli(url, "api-keys", "create", "--name", "test", *args)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("vvk_") and "token" not in result.stdout
    return token[4:16], token


def event(n: int, customer: str = "cus_1", **changes: object) -> dict:
    body = {"event_id": f"evt_{n}", "customer_id": customer, "metric": "api_calls",
            "timestamp": "2026-11-10T12:00:00Z", "quantity": "0.100000001"}  # fmt: skip
    body.update(changes)
    return body


@pytest.fixture
def api(pg_url: str, kafka_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, str, dict]]:
    """(base URL, warehouse URL, Kafka environment) of a server on a fresh database."""
    env = {**kafka_env, "VALUEVERSE_REDIS_URL": REDIS_URL, "VALUEVERSE_API_MAX_EVENTS": "50",
           "VALUEVERSE_API_MAX_BODY_BYTES": "65536"}  # fmt: skip
    with api_server(pg_url, env, tmp_path / "api.log") as base:
        yield base, pg_url, kafka_env


def test_keys_and_scopes(api: tuple[str, str, dict]) -> None:
    base, url, _kafka = api
    _writer_id, writer = make_key(url, "--scopes", "events:write")
    _reader_id, reader = make_key(url, "--scopes", "usage:read,invoices:read")
    payload = json.dumps(event(1)).encode()

    missing = call(base, "POST", "/v1/events", None, payload)
    assert missing.status == 401 and missing.problem
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert call(base, "POST", "/v1/events", "vvk_" + "0" * 12 + "_nope", payload).status == 401
    assert call(base, "POST", "/v1/events", writer[:-2] + "xx", payload).status == 401
    wrong_scope = call(base, "POST", "/v1/events", reader, payload)
    assert wrong_scope.status == 403 and "events:write" in wrong_scope.body["detail"]
    assert call(base, "GET", "/v1/customers/cus_1/usage", writer).status == 403
    assert call(base, "POST", "/v1/events", writer, payload).status == 202

    listed = run_cli(url, "api-keys", "list").stdout
    assert writer not in listed and writer.split("_")[2] not in listed  # no secret, ever
    assert run_cli(url, "api-keys", "revoke", writer[4:16]).returncode == 0
    time.sleep(2.5)  # every server's cache lets a revocation through within 2 s
    assert call(base, "POST", "/v1/events", writer, payload).status == 401


def test_events_accepted_and_rejected_and_dead_lettered(api: tuple[str, str, dict]) -> None:
    base, url, kafka = api
    key_id, token = make_key(url, "--scopes", "events:write", "--customer", "cus_1")
    batch = [event(1), event(2), event(3, metric="Bad Metric"), event(4, customer="cus_other")]
    reply = call(base, "POST", "/v1/events", token, json.dumps(batch).encode(),
                 headers={"X-Request-ID": "req-42"})  # fmt: skip
    assert reply.status == 202, reply.body
    assert reply.body["accepted"] == 2 and reply.headers["x-request-id"] == "req-42"
    assert [(r["index"], r["event_id"], r["rule"]) for r in reply.body["rejected"]] == [
        (2, "evt_3", "metric.invalid"), (3, "evt_4", "auth.customer_scope")]  # fmt: skip

    landed = read_topic(kafka["KAFKA_BOOTSTRAP_SERVERS"], kafka["VALUEVERSE_TOPIC"], 2)
    assert sorted(m.value() for m in landed) == sorted(
        json.dumps(e).encode() for e in batch[:2]
    )  # byte for byte: 0.100000001 kept exactly
    assert {m.key() for m in landed} == {b"cus_1"}
    dead = read_topic(kafka["KAFKA_BOOTSTRAP_SERVERS"], kafka["VALUEVERSE_DLQ_TOPIC"], 2)
    origins = sorted(dict(m.headers())["valueverse.origin"].decode() for m in dead)
    assert origins == [f"api:{key_id}/req-42#2", f"api:{key_id}/req-42#3"]
    rules = sorted(dict(m.headers())["valueverse.rule"].decode() for m in dead)
    assert rules == ["auth.customer_scope", "metric.invalid"]
    # and where the data-quality report counts rejects, like every landing path: written
    # after the answer (the request does not wait for it), within the writer's second
    recorded = "SELECT origin, rule FROM raw.rejected_events ORDER BY origin"
    wait_for(lambda: len(query(url, recorded)) == 2, 10, "the rejects in the warehouse")
    assert query(url, recorded) == [
        (f"api:{key_id}/req-42#2", "metric.invalid"),
        (f"api:{key_id}/req-42#3", "auth.customer_scope"),
    ]
    batches = query(url, "SELECT source, accepted, rejected FROM raw.ingest_batches")
    assert batches == [(f"api:{key_id}", 0, 2)]

    ndjson = b"\n".join(json.dumps(event(n)).encode() for n in (5, 6)) + b"\n"
    assert call(base, "POST", "/v1/events", token, ndjson, "application/x-ndjson").body[
        "accepted"] == 2  # fmt: skip


def test_malformed_and_oversized_bodies_are_named(api: tuple[str, str, dict]) -> None:
    base, url, _kafka = api
    _key_id, token = make_key(url, "--scopes", "events:write")
    cases = [
        (b'{"event_id": ', "application/json", 400, "Malformed JSON"),
        (b"[1, 2", "application/json", 400, "Malformed JSON"),
        (b"event_id=1", "text/plain", 415, "Unsupported media type"),
        (json.dumps([event(n) for n in range(51)]).encode(), "application/json", 413,
         "Too many events"),
        (b"[" + b" " * 70_000 + b"]", "application/json", 413, "Body too large"),
        (b"[]", "application/json", 400, "No events"),
    ]  # fmt: skip
    for data, content_type, status, title in cases:
        reply = call(base, "POST", "/v1/events", token, data, content_type)
        assert (reply.status, reply.body.get("title")) == (status, title), (data[:40], reply.body)
        assert reply.problem and reply.body["detail"]


def test_rate_limits_are_shared_by_two_servers(
    pg_url: str, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**kafka_env, "VALUEVERSE_REDIS_URL": REDIS_URL, "VALUEVERSE_API_BURST": "1"}
    with (api_server(pg_url, env, tmp_path / "a.log") as first,
          api_server(pg_url, env, tmp_path / "b.log") as second):  # fmt: skip
        _key_id, token = make_key(pg_url, "--scopes", "usage:read",
                                  "--requests-per-second", "3")  # fmt: skip
        replies = [
            call(base, "GET", "/v1/customers/nobody/usage", token) for base in (first, second) * 3
        ]  # fmt: skip (503: nothing built yet)
        statuses = [r.status for r in replies]
        assert statuses.count(429) >= 2, statuses  # 3 per second between both servers
        limited = next(r for r in replies if r.status == 429)
        assert limited.problem and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-limit"] == "3"
        assert {r.status for r in replies} == {503, 429}  # served (nothing built yet) or limited
        time.sleep(1.2)
        assert call(second, "GET", "/v1/customers/nobody/usage", token).status == 503


def test_broker_stopping_is_503_and_not_ready(pg_url: str, tmp_path: Path) -> None:
    broker_log = tmp_path / "tansu.log"
    tag = uuid.uuid4().hex[:8]
    with start_broker(log_path=broker_log) as broker:
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "VALUEVERSE_TOPIC": f"u-{tag}",
               "VALUEVERSE_DLQ_TOPIC": f"u-{tag}-dlq",
               "VALUEVERSE_API_PRODUCE_TIMEOUT_SECONDS": "2"}  # fmt: skip
        with api_server(pg_url, env, tmp_path / "api.log") as base:
            _key_id, token = make_key(pg_url, "--scopes", "events:write")
            assert call(base, "GET", "/readyz").status == 200
            assert (
                call(base, "POST", "/v1/events", token, json.dumps(event(1)).encode()).status == 202
            )
            _stop(broker)
            reply = call(base, "POST", "/v1/events", token, json.dumps(event(2)).encode())
            assert reply.status == 503 and reply.problem, reply.body
            assert reply.headers["retry-after"] == "5" and "accepted" not in reply.body
            ready = call(base, "GET", "/readyz")
            assert ready.status == 503 and ready.body["broker"] is False


def _stop(broker: LocalBroker) -> None:
    broker.process.send_signal(signal.SIGKILL)
    broker.process.wait(timeout=10)


@pytest.mark.parametrize("scenario", scenario_dirs(), ids=lambda p: p.name)
def test_scenarios_posted_through_the_api_land_like_events_load(
    scenario: Path, duckdb_url: str, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    """The same raw rows as `events load` of the file gives: every invoice line is computed
    from them alone (tests/integration/test_rating_scenarios.py checks those lines)."""
    expect = yaml.safe_load((scenario / "scenario.yml").read_text())["expect"]
    lines = [line for line in (scenario / "events.jsonl").read_bytes().splitlines() if line.strip()]
    env = {**kafka_env, "VALUEVERSE_REDIS_URL": ""}
    with api_server(duckdb_url, env, tmp_path / "api.log") as base:
        _key_id, token = make_key(duckdb_url, "--scopes", "events:write")
        reply = call(base, "POST", "/v1/events", token, b"\n".join(lines), "application/x-ndjson")
    assert reply.status == 202, reply.body
    assert len(reply.body["rejected"]) == expect["rejected"]
    landed = _ingest(duckdb_url, kafka_env)
    assert {k: landed[k] for k in ("accepted", "duplicates", "conflicts")} == {
        k: expect[k] for k in ("accepted", "duplicates", "conflicts")}  # fmt: skip
    reference = tmp_path / "reference.duckdb"
    assert run_cli(f"duckdb:///{reference}", "events", "load",
                   str(scenario / "events.jsonl")).returncode == 0  # fmt: skip
    columns = ("event_id, customer_id, metric, event_ts, quantity, properties_text,"
               " properties_num, content_hash")  # fmt: skip
    rows = f"SELECT {columns} FROM raw.events ORDER BY event_id"
    assert query(duckdb_url, rows) == query(f"duckdb:///{reference}", rows)


def _ingest(url: str, kafka_env: dict[str, str]) -> dict:
    env = {**os.environ, **kafka_env, "VALUEVERSE_WAREHOUSE": url}
    result = subprocess.run([CLI, "ingest", "run", "--until-idle", "--metrics-port", "0"],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def billed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL warehouse with scenario 01 built and its ended periods finalized."""
    from tests.conftest import scratch_pg

    scenario = next(p for p in scenario_dirs() if p.name.startswith("01_"))
    with scratch_pg() as url:
        for args in (("catalog", "load", str(scenario / "catalog.yml")),
                     ("events", "load", str(scenario / "events.jsonl")),
                     ("build", "--as-of", "2026-11-05"),
                     ("invoices", "finalize", "--as-of", "2026-11-05")):  # fmt: skip
            result = run_cli(url, *args)
            assert result.returncode == 0, (args, result.stderr[-2000:])
        yield url


def test_usage_and_invoices_read_from_the_marts(
    billed: str, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    _key_id, own = make_key(
        billed, "--scopes", "usage:read,invoices:read", "--customer", "cus_acme"
    )
    _other_id, other = make_key(
        billed, "--scopes", "usage:read,invoices:read", "--customer", "cus_x"
    )
    with api_server(billed, kafka_env, tmp_path / "api.log") as base:
        usage = call(base, "GET", "/v1/customers/cus_acme/usage", own)
        invoices = call(base, "GET", "/v1/customers/cus_acme/invoices", own)
        first = call(base, "GET", "/v1/invoices/VV-000001?page_size=1", own)
        second_page = call(base, "GET", "/v1/invoices/VV-000001?page_size=1&page=2", own)
        foreign = [call(base, "GET", path, other) for path in (
            "/v1/customers/cus_acme/usage", "/v1/customers/cus_acme/invoices",
            "/v1/invoices/VV-000001")]  # fmt: skip
        unknown = call(base, "GET", "/v1/invoices/VV-999999", own)

    assert usage.status == 200 and usage.body["built_at"]
    periods = {p["period_start"]: p for p in usage.body["periods"]}
    assert sorted(periods) == ["2026-09-01", "2026-10-01", "2026-11-01"]
    september = periods["2026-09-01"]["charges"][0]
    # the scenario's September: 10000 + 2345 api calls at 0.002 (exact decimals, as strings)
    assert (september["quantity"], september["amount"]) == ("12345.000000000", "24.6900")
    assert periods["2026-11-01"]["status"] == "open"

    assert invoices.status == 200
    issued = [
        (i["invoice_number"], i["period_start"], i["status"]) for i in invoices.body["invoices"]
    ]
    assert issued[:2] == [
        ("VV-000002", "2026-10-01", "issued"),
        ("VV-000001", "2026-09-01", "issued"),
    ]
    assert len(issued) == 2  # November is still open: no invoice, draft or issued, yet

    assert first.status == 200 and first.body["total"] == "73.6900"  # 49.00 fee + 24.69 usage
    usage_line = next(line for line in first.body["lines"] if line["charge_index"] is not None)
    assert [e["event_id"] for e in usage_line["events"]] == ["evt_00001"]
    assert first.body["events_page"]["next_page"] == 2
    second_line = next(line for line in second_page.body["lines"] if line["events"])
    assert [e["event_id"] for e in second_line["events"]] == ["evt_00002"]
    assert second_page.body["events_page"]["next_page"] is None

    assert [r.status for r in foreign] == [403, 403, 404]  # never another customer's data
    assert unknown.status == 404 and unknown.problem


def _signed(payload: bytes, secret: str) -> str:
    """A Stripe-Signature header for `payload` (t=<time>,v1=<HMAC-SHA256 of t.payload>)."""
    import hashlib
    import hmac

    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


def test_stripe_webhooks_metrics_and_traces(
    pg_url: str, kafka_env: dict[str, str], tmp_path: Path
) -> None:
    """Webhooks are verified before anything is recorded; /metrics counts what happened; with
    an OTLP collector configured, spans reach it and each event carries its trace in Kafka."""
    import http.server
    import threading

    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    collector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    secret = "whsec_test_" + uuid.uuid4().hex
    env = {**kafka_env, "STRIPE_WEBHOOK_SECRET": secret, "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}"}  # fmt: skip
    try:
        with api_server(pg_url, env, tmp_path / "api.log") as base:
            _key_id, token = make_key(pg_url, "--scopes", "events:write")
            hook = {
                "id": "evt_hook_1",
                "object": "event",
                "type": "customer.created",
                "created": int(time.time()),
                "data": {"object": {"object": "customer"}},
            }
            payload = json.dumps(hook).encode()
            forged, signed = (
                call(base, "POST", "/v1/stripe/webhook", None, payload,
                     headers={"Stripe-Signature": _signed(payload, key)})
                for key in ("whsec_wrong", secret)
            )  # fmt: skip
            posted = call(base, "POST", "/v1/events", token, json.dumps(event(1)).encode())
            metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
            docs = urllib.request.urlopen(base + "/docs", timeout=10).read().decode()
            openapi = call(base, "GET", "/openapi.json").body
        from_api = len(received)  # the server flushed its spans when it stopped
        landed = _ingest(pg_url, env)  # the ingest service, with the same collector
    finally:
        collector.shutdown()

    assert forged.status == 400 and forged.problem and "signature" in forged.body["detail"]
    assert signed.status == 200 and signed.body == {"received": True, "applied": False}
    assert query(pg_url, "SELECT event_id, outcome FROM billing.webhook_events") == [
        ("evt_hook_1", "not_a_payment")]  # fmt: skip

    assert posted.status == 202
    assert "/v1/events" in docs and "/v1/customers/{customer_id}/usage" in docs
    assert "<script" not in docs  # nothing loaded from elsewhere at view time
    assert openapi["paths"]["/v1/events"]["post"]["summary"] == "Send usage events"
    assert (
        'valueverse_api_requests_total{method="POST",route="/v1/events",status="202"} 1.0'
        in metrics
    )
    assert 'valueverse_api_events_total{outcome="accepted",rule=""} 1.0' in metrics
    assert "valueverse_api_produce_seconds_count 1.0" in metrics

    [message] = read_topic(kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["VALUEVERSE_TOPIC"], 1)
    traceparent = dict(message.headers())["traceparent"].decode()
    trace_id = bytes.fromhex(traceparent.split("-")[1])
    assert any(trace_id in body for body in received[:from_api])  # the request's span
    assert landed["accepted"] == 1
    batch_spans = [body for body in received[from_api:] if b"landing batch" in body]
    assert batch_spans and any(trace_id in body for body in batch_spans)  # linked to it
