"""Cached readers of the marts for the dashboards (pages never write SQL themselves).

Every reader takes the warehouse URL (VALUEVERSE_WAREHOUSE, see `warehouse_url`) so the cache
is keyed by warehouse, and returns a pandas DataFrame whose money columns hold `Decimal`
values exactly as the marts store them (no float: charts convert for plotting only). Readers
of optional tables (the payments marts, the quality results) return None when the table does
not exist, and the page says what to run.

DuckDB allows one writing process, and a reader holding the file open would block the next
`valueverse build`: each reader opens the file read-only, runs its page's queries, and closes
it at once, retrying for a moment when a writer holds the lock. Opening the file costs ~0.1 s,
so a page's queries go through one connection (`_run`), not one each. Results are cached
(`st.cache_data`, ttl VALUEVERSE_DASHBOARD_TTL seconds): a page reads the warehouse once per ttl.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any, NamedTuple

import pandas as pd
import streamlit as st

from ingestion.warehouse import Session, connect, resolve

TTL = int(os.environ.get("VALUEVERSE_DASHBOARD_TTL", "60") or 60)
LOCK_RETRY_SECONDS = 5.0
EVENT_ROWS = 200  # events shown behind one usage line
SEARCH_ROWS = 500  # invoices listed by a search


def warehouse_url() -> str:
    """The warehouse every page reads: VALUEVERSE_WAREHOUSE, else ./valueverse.duckdb."""
    return resolve().url


class Query(NamedTuple):
    """One SELECT (`%s` marks a parameter, `%%` is a literal percent sign) and the tables it
    needs: None when one is absent."""

    sql: str
    params: tuple[Any, ...] = ()
    needs: tuple[str, ...] = ()


SCHEMAS = "('marts', 'quality', 'raw', 'billing', 'analytics', 'notify')"
TABLES_SQL = (
    "select table_schema, table_name from information_schema.tables"
    f" where table_schema in {SCHEMAS}"
)


def _connection(url: str) -> Session:
    """One short-lived read-only session, waiting a moment for a writer to let go."""
    return connect(resolve(url), read_only=True, wait=LOCK_RETRY_SECONDS)


def _present(db: Session) -> frozenset[str]:
    return frozenset(f"{s}.{t}" for s, t in db.rows(TABLES_SQL))


@st.cache_data(ttl=TTL, show_spinner=False)
def _run(url: str, queries: tuple[Query, ...]) -> tuple[pd.DataFrame | None, ...]:
    """The queries' results over one connection; None for a query whose table is absent."""
    with _connection(url) as db:
        present = _present(db) if any(q.needs for q in queries) else frozenset()
        return tuple(
            db.frame(q.sql, q.params) if all(n in present for n in q.needs) else None
            for q in queries
        )


def fetch(url: str, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
    """Rows of one SELECT, uncached (for scripts and tests)."""
    with _connection(url) as db:
        return db.frame(sql, params)


class Overview(NamedTuple):
    tables: frozenset[str]
    currencies: list[str]  # most invoiced first
    exponents: dict[str, int]


@st.cache_data(ttl=TTL, show_spinner=False)
def overview(url: str) -> Overview:
    """Which tables exist, and the currencies with invoices or usage (shared by every page)."""
    with _connection(url) as db:
        present = _present(db)
        if not {"marts.revenue_by_month", "marts.usage_by_month"} <= present:
            return Overview(present, [], {})
        df = db.frame(
            "select currency, sum(n) as n, max(e) as e from ("
            " select currency, count(*) as n, max(currency_exponent) as e"
            " from marts.revenue_by_month group by currency union all"
            " select currency, 0 as n, max(currency_exponent) as e"
            " from marts.usage_by_month group by currency"
            ") as c group by currency order by n desc, currency"
        )
    exponents = {c: int(e) for c, e in df[["currency", "e"]].itertuples(index=False)}
    return Overview(present, list(df["currency"]), exponents)


def has(url: str, *names: str) -> bool:
    return all(name in overview(url).tables for name in names)


def currencies(url: str) -> list[str]:
    return overview(url).currencies


def currency_exponent(url: str, currency: str) -> int:
    return overview(url).exponents.get(currency, 2)


# --- revenue ------------------------------------------------------------------------------


def revenue(url: str, currency: str) -> dict[str, pd.DataFrame | None]:
    """mrr, invoiced (revenue_by_month), collected (None without marts.payments), retention."""
    c = (currency,)
    mrr, invoiced, collected, retention = _run(
        url,
        (
            Query(
                "select month, paying_customers, committed_mrr, usage_mrr, mrr, committed_arr,"
                " usage_arr, arr from marts.mrr where currency = %s order by month",
                c,
            ),
            Query(
                "select month, invoices, finalized_invoices, customers, subtotal,"
                " discount_amount, tax_amount, adjustment_amount, invoiced_total"
                " from marts.revenue_by_month where currency = %s order by month",
                c,
            ),
            # collected by the month of the period start, like revenue_by_month
            Query(
                "select cast(date_trunc('month', period_start) as date) as month,"
                " count(*) as issued_invoices, sum(amount_due) as amount_due,"
                " sum(amount_paid) as collected from marts.payments where currency = %s"
                " group by 1 order by 1",
                c,
                ("marts.payments",),
            ),
            Query(
                "select cohort_month, month, months_since_start, cohort_customers,"
                " active_customers, churned_customers, starting_mrr, mrr, retained_mrr, nrr,"
                " grr, logo_churn from marts.retention_cohorts where currency = %s"
                " order by cohort_month, month",
                c,
            ),
        ),
    )
    return {"mrr": mrr, "invoiced": invoiced, "collected": collected, "retention": retention}


# --- accounts receivable ------------------------------------------------------------------


def receivables(url: str) -> dict[str, pd.DataFrame | None]:
    """payments, receivables and the latest dunning step per invoice; None where absent."""
    payments, receivable, dunning = _run(
        url,
        (
            Query(
                "select invoice_id, invoice_number, customer_id, currency, issued_on,"
                " invoice_total, amount_due, amount_paid, payment_status, attempts,"
                " last_attempt_at from marts.payments order by invoice_number",
                needs=("marts.payments",),
            ),
            Query(
                "select invoice_id, invoice_number, customer_id, currency, issued_on,"
                " payment_status, amount_due, amount_paid, open_balance, days_outstanding,"
                " aging_bucket from marts.accounts_receivable"
                " order by days_outstanding desc, invoice_number",
                needs=("marts.accounts_receivable",),
            ),
            Query(
                "select invoice_id, event_type as dunning_step, attempt_no, due_at, recorded_at"
                " from (select d.*, row_number() over (partition by invoice_id"
                "  order by recorded_at desc, attempt_no desc) as rn"
                "  from billing.dunning_events d) x where rn = 1 order by recorded_at desc",
                needs=("billing.dunning_events",),
            ),
        ),
    )
    return {"payments": payments, "receivables": receivable, "dunning": dunning}


# --- usage --------------------------------------------------------------------------------


def usage(url: str, currency: str) -> dict[str, pd.DataFrame | None]:
    """usage (usage_by_month of the currency) and unbilled (every currency: events)."""
    usage_df, unbilled = _run(
        url,
        (
            Query(
                "select month, customer_id, plan_code, metric_code, quantity, event_count,"
                " amount, has_open_period from marts.usage_by_month where currency = %s"
                " order by month, customer_id, plan_code, metric_code",
                (currency,),
            ),
            Query(
                "select month, customer_id, metric_code, reason, events, quantity"
                " from marts.unbilled_usage_by_month order by month, events desc, customer_id"
            ),
        ),
    )
    return {"usage": usage_df, "unbilled": unbilled}


# --- invoices -----------------------------------------------------------------------------


def search_invoices(
    url: str, text: str, currency: str | None, start: date, end: date, statuses: tuple[str, ...]
) -> pd.DataFrame:
    """Invoices whose id, number or customer contains `text`, newest first (SEARCH_ROWS)."""
    where = ["period_start >= %s", "period_start <= %s"]
    params: list[Any] = [start, end]
    if text:
        where.append(
            "(lower(invoice_id) like %s or lower(coalesce(invoice_number, '')) like %s"
            " or lower(customer_id) like %s)"
        )
        params += [f"%{text.lower()}%"] * 3
    if currency:
        where.append("currency = %s")
        params.append(currency)
    if statuses:
        where.append("status in (" + ", ".join("%s" for _ in statuses) + ")")
        params += list(statuses)
    sql = (
        "select invoice_id, invoice_number, customer_id, plan_code, period_start, period_end,"
        " status, subtotal, discount_amount, tax_amount, adjustment_amount, total, currency,"
        " currency_exponent from marts.invoices where " + " and ".join(where) + " order by"
        f" period_start desc, invoice_id limit {SEARCH_ROWS}"
    )
    (found,) = _run(url, (Query(sql, tuple(params)),))
    assert found is not None
    return found


def invoice(url: str, invoice_id: str) -> dict[str, pd.DataFrame | None]:
    """lines, rated (how each usage line was priced), tiers (graduated/volume tier math) and
    events (the first EVENT_ROWS events behind each usage line). The events are filtered on the
    view's own columns, so DuckDB pushes the filter down and PostgreSQL never builds a line_id
    per event."""
    subscription_id, _, period_start = invoice_id.rpartition("/")
    period = (subscription_id, period_start)
    lines, rated, tiers, events = _run(
        url,
        (
            Query(
                "select line_id, line_order, line_type, charge_index, metric, quantity,"
                " amount_exact, amount, currency, adjusted_line_type, corrected_period_start"
                " from marts.invoice_lines where invoice_id = %s order by line_order, line_id",
                (invoice_id,),
            ),
            Query(
                "select line_id, charge_index, metric_code, aggregation, model, quantity,"
                " event_count, unit_price, package_count, tiers_used, amount_exact, amount"
                " from marts.rated_usage where invoice_id = %s order by charge_index",
                (invoice_id,),
            ),
            Query(
                "select line_id, charge_index, model, quantity, tier_index, lower_bound, up_to,"
                " unit_price, flat_fee, billed_units, flat_fee_applies, amount_exact"
                " from marts.rated_usage_tiers where subscription_id = %s"
                " and period_start = cast(%s as date) order by charge_index, tier_index",
                period,
            ),
            Query(
                "select charge_index, event_id, event_ts, field_status, value_number, value_text,"
                " batch_id, landed_at from (select e.*, row_number() over (partition by"
                "  charge_index order by event_ts, event_id) as n from marts.invoice_line_events e"
                "  where subscription_id = %s and period_start = cast(%s as date)) x"
                f" where n <= {EVENT_ROWS} order by charge_index, event_ts, event_id",
                period,
            ),
        ),
    )
    return {"lines": lines, "rated": rated, "tiers": tiers, "events": events}


# --- data quality and pipeline ------------------------------------------------------------

LANDING_TOTALS = Query(
    "select count(*) as batches, coalesce(sum(accepted), 0) as accepted,"
    " coalesce(sum(duplicates), 0) as duplicates, coalesce(sum(conflicts), 0) as conflicts,"
    " coalesce(sum(rejected), 0) as rejected, max(landed_at) as last_landed_at,"
    " max(newest_event_at) as newest_event_at from marts.landing_batches"
)


def quality(url: str) -> dict[str, pd.DataFrame | None]:
    """totals (landing counts), unbilled (by reason), run (the latest quality.runs row, None
    before any run) and results (its expectation results)."""
    totals, unbilled, run, results = _run(
        url,
        (
            LANDING_TOTALS,
            Query(
                "select reason, sum(events) as events from marts.unbilled_usage_by_month"
                " group by reason order by reason"
            ),
            Query(
                "select run_id, run_at, as_of, success, critical_failures, docs_index"
                " from quality.runs order by run_at desc limit 1",
                needs=("quality.runs",),
            ),
            Query(
                "select suite, expectation, column_name, critical, success, observed,"
                " scope_start, scope_end from quality.expectation_results where run_id ="
                " (select run_id from quality.runs order by run_at desc limit 1)"
                " order by success, critical desc, suite, expectation",
                needs=("quality.runs", "quality.expectation_results"),
            ),
        ),
    )
    if run is not None and run.empty:
        run = results = None
    return {"totals": totals, "unbilled": unbilled, "run": run, "results": results}


def pipeline(url: str, batches: int = 50, builds: int = 20) -> dict[str, pd.DataFrame | None]:
    """totals (landing counts), batches (the last landing batches), builds (the last verified
    dbt builds; None without the build log)."""
    totals, last_batches, last_builds = _run(
        url,
        (
            LANDING_TOTALS,
            Query(
                "select batch_id, source, landed_at, accepted, duplicates, conflicts, rejected,"
                " oldest_event_at, newest_event_at from marts.landing_batches"
                f" order by landed_at desc, batch_id limit {int(batches)}"
            ),
            Query(
                "select finished_at, as_of, catalog_version, verified_through,"
                " verified_landed_at, unit_tests_ran, catalog_tests_ran, invocation_id"
                " from analytics.valueverse_build_log"
                f" order by finished_at desc limit {int(builds)}",
                needs=("analytics.valueverse_build_log",),
            ),
        ),
    )
    return {"totals": totals, "batches": last_batches, "builds": last_builds}


# --- notifications ------------------------------------------------------------------------

NOTIFY_TABLES = ("billing.notifications", "notify.endpoints", "notify.deliveries")
NOTIFY_ROWS = 500  # rows behind each notifications table


def notifications(url: str) -> dict[str, pd.DataFrame | None]:
    """counts (recorded, delivered pairs, enabled endpoints), failing (each (notification,
    endpoint) whose latest attempt failed or gave up, newest first), notifications (the latest
    recorded), endpoints, deliveries (the latest attempts). None before the notify tables."""
    latest = (
        "select *, row_number() over (partition by notification_id, endpoint_id"
        " order by logged_at desc, attempt desc) as latest from notify.deliveries"
    )
    counts, failing, recorded, endpoints, deliveries = _run(
        url,
        (
            Query(
                "select (select count(*) from billing.notifications) as recorded,"
                f" (select count(*) from ({latest}) as d where latest = 1"
                "  and status = 'delivered') as delivered,"
                " (select count(*) from notify.endpoints where enabled) as endpoints",
                needs=NOTIFY_TABLES,
            ),
            Query(
                "select d.notification_id, d.endpoint_id, e.url, d.status, d.attempt,"
                " d.status_code, d.error, d.next_attempt_at, d.logged_at"
                f" from ({latest}) as d join notify.endpoints e on e.endpoint_id = d.endpoint_id"
                " where d.latest = 1 and d.status in ('failed', 'gave_up')"
                f" order by d.logged_at desc limit {NOTIFY_ROWS}",
                needs=NOTIFY_TABLES,
            ),
            Query(
                "select notification_id, event_type, customer_id, subject, recorded_at"
                f" from billing.notifications order by recorded_at desc limit {NOTIFY_ROWS}",
                needs=NOTIFY_TABLES,
            ),
            Query(
                "select endpoint_id, url, event_types, customer_id, enabled, created_at,"
                " disabled_at, disabled_reason from notify.endpoints order by created_at",
                needs=NOTIFY_TABLES,
            ),
            Query(
                "select logged_at, notification_id, endpoint_id, attempt, status, status_code,"
                " latency_ms, error from notify.deliveries"
                f" order by logged_at desc limit {NOTIFY_ROWS}",
                needs=NOTIFY_TABLES,
            ),
        ),
    )
    return {"counts": counts, "failing": failing, "notifications": recorded,
            "endpoints": endpoints, "deliveries": deliveries}  # fmt: skip
