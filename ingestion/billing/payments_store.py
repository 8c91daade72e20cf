"""The payments tables of the billing store: schema `billing`, append-only, for DuckDB and
PostgreSQL. Their DDL lives in billing beside the finalized-invoice store because a build
creates both before dbt reads them as sources; ingestion/payments/ writes the rows.

- `billing.stripe_customers`: which Stripe customer and payment method pay for a customer.
- `billing.payment_attempts`: one row per STATE of an attempt (pending first, then what Stripe
  said), never updated: the history of every charge is its own audit trail, and a crash
  between "asked Stripe" and "wrote the answer" leaves a visible `pending` row.
- `billing.dunning_events`: every dunning step (failure, retry scheduled or made, paid,
  requires action, uncollectible).
- `billing.webhook_events`: every Stripe webhook event received, once (its id is the key), with
  what it did (`applied`, or why not: a duplicate delivery is not even a row).
- Views `billing.payment_attempt_latest` (the newest state of each attempt) and
  `billing.invoice_payment_status` (one row per invoice with attempts): the payment status is
  derived from the attempts and dunning events, never stored by UPDATE. The collector reads
  the view to choose what to charge, dbt reads it for the finance marts: one definition.

Immutability like ingestion/billing/invoice_store.py: on PostgreSQL the same
`billing.refuse_change()` trigger function refuses UPDATE, DELETE and TRUNCATE on every
payments table.
"""

from __future__ import annotations

from ingestion.billing.invoice_store import ensure_guarded, ensure_store, guards_ddl
from ingestion.warehouse import WarehouseConfig

# the first three exist all or none (a missing one is never re-created empty); webhook_events
# came later and is created where it is missing
PAYMENT_TABLES = ("stripe_customers", "payment_attempts", "dunning_events", "webhook_events")
PAYMENT_VIEWS = ("payment_attempt_latest", "invoice_payment_status")

_TABLES = """
CREATE SCHEMA IF NOT EXISTS billing;

CREATE TABLE IF NOT EXISTS billing.stripe_customers (
    customer_id          VARCHAR NOT NULL,
    payment_method_spec  VARCHAR NOT NULL,  -- what the configuration asked for
    stripe_customer_id   VARCHAR NOT NULL,
    payment_method_id    VARCHAR NOT NULL,  -- the method attached to that customer
    recorded_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (customer_id, payment_method_spec)
);

CREATE TABLE IF NOT EXISTS billing.payment_attempts (
    attempt_id               VARCHAR NOT NULL,  -- <invoice_id>#<attempt_no>
    state_no                 INTEGER NOT NULL,  -- 1: pending (written before Stripe is called)
    invoice_id               VARCHAR NOT NULL,
    invoice_number           VARCHAR NOT NULL,
    customer_id              VARCHAR NOT NULL,
    attempt_no               INTEGER NOT NULL,
    idempotency_key          VARCHAR NOT NULL,
    amount_minor             BIGINT NOT NULL,   -- what was asked, in minor units
    currency                 VARCHAR NOT NULL,
    currency_exponent        INTEGER NOT NULL,
    status                   VARCHAR NOT NULL,
    stripe_payment_intent_id VARCHAR,
    amount_received_minor    BIGINT,            -- what Stripe says it collected
    decline_code             VARCHAR,
    decline_message          VARCHAR,
    source                   VARCHAR NOT NULL,  -- collect | reconcile | poll | expiry | webhook
    recorded_at              TIMESTAMP NOT NULL,  -- UTC, the run's clock
    PRIMARY KEY (attempt_id, state_no),
    CHECK (status IN ('pending', 'succeeded', 'failed', 'requires_action', 'unknown')),
    CHECK (amount_minor > 0)
);

CREATE TABLE IF NOT EXISTS billing.dunning_events (
    invoice_id   VARCHAR NOT NULL,
    event_type   VARCHAR NOT NULL,
    attempt_no   INTEGER NOT NULL,
    due_at       TIMESTAMP,           -- retry_scheduled: when the retry becomes due
    detail       VARCHAR,
    recorded_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (invoice_id, event_type, attempt_no),
    CHECK (event_type IN ('payment_failed', 'retry_scheduled', 'retry_attempted',
                          'requires_action', 'paid', 'uncollectible'))
);

CREATE TABLE IF NOT EXISTS billing.webhook_events (
    event_id           VARCHAR PRIMARY KEY,  -- Stripe's event id: a redelivery is a no-op
    event_type         VARCHAR NOT NULL,
    attempt_id         VARCHAR,              -- from the PaymentIntent's metadata
    payment_intent_id  VARCHAR,
    status             VARCHAR,              -- the state the event reports
    created_at         TIMESTAMP,            -- when Stripe created the event (UTC)
    outcome            VARCHAR NOT NULL,     -- applied, or why not (webhooks.py)
    received_at        TIMESTAMP NOT NULL
);
"""

_VIEWS = """
CREATE OR REPLACE VIEW billing.payment_attempt_latest AS
SELECT attempt_id, state_no, invoice_id, invoice_number, customer_id, attempt_no,
       idempotency_key, amount_minor, currency, currency_exponent, status,
       stripe_payment_intent_id, amount_received_minor, decline_code, decline_message, source,
       recorded_at, first_recorded_at
FROM (
    SELECT a.*,
           row_number() OVER (PARTITION BY attempt_id ORDER BY state_no DESC) AS newest,
           min(recorded_at) OVER (PARTITION BY attempt_id) AS first_recorded_at
    FROM billing.payment_attempts AS a
) AS states
WHERE newest = 1;

CREATE OR REPLACE VIEW billing.invoice_payment_status AS
WITH per_invoice AS (
    SELECT invoice_id,
           count(*) AS attempts,
           max(attempt_no) AS last_attempt_no,
           max(recorded_at) AS last_attempt_at,
           sum(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded_attempts,
           sum(CASE WHEN status = 'succeeded' THEN amount_received_minor ELSE 0 END)
               AS amount_paid_minor,
           max(CASE WHEN status = 'succeeded' THEN recorded_at END) AS paid_at
    FROM billing.payment_attempt_latest
    GROUP BY invoice_id
),
last_attempt AS (
    SELECT l.invoice_id, l.status
    FROM billing.payment_attempt_latest AS l
    JOIN per_invoice AS p ON p.invoice_id = l.invoice_id AND p.last_attempt_no = l.attempt_no
),
first_failure AS (
    SELECT invoice_id, min(recorded_at) AS first_failed_at
    FROM billing.payment_attempts WHERE status = 'failed' GROUP BY invoice_id
),
written_off AS (
    SELECT invoice_id, min(recorded_at) AS uncollectible_at
    FROM billing.dunning_events WHERE event_type = 'uncollectible' GROUP BY invoice_id
)
SELECT p.invoice_id,
       CASE
           WHEN p.succeeded_attempts > 0 THEN 'paid'
           WHEN w.uncollectible_at IS NOT NULL THEN 'uncollectible'
           WHEN l.status = 'requires_action' THEN 'requires_action'
           WHEN l.status = 'failed' THEN 'failed'
           ELSE 'pending'
       END AS payment_status,
       p.attempts,
       p.last_attempt_no,
       p.last_attempt_at,
       p.succeeded_attempts,
       p.amount_paid_minor,
       p.paid_at,
       f.first_failed_at,
       w.uncollectible_at
FROM per_invoice AS p
JOIN last_attempt AS l ON l.invoice_id = p.invoice_id
LEFT JOIN first_failure AS f ON f.invoice_id = p.invoice_id
LEFT JOIN written_off AS w ON w.invoice_id = p.invoice_id;
"""


def ensure_payments_store(config: WarehouseConfig) -> None:
    """Create the payments tables, views and (PostgreSQL) guards if missing. The invoice store
    comes first: it owns the schema and the `refuse_change()` trigger function reused here."""
    ensure_store(config)
    ensure_guarded(config, [_TABLES, _VIEWS], _TABLES + _VIEWS + guards_ddl(PAYMENT_TABLES),
                   PAYMENT_TABLES, PAYMENT_VIEWS, together=PAYMENT_TABLES[:3])  # fmt: skip
