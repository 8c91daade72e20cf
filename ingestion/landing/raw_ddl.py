"""The raw warehouse schema, for DuckDB and PostgreSQL.

This is the contract between landing (Python) and rating (dbt): dbt's
sources (`dbt/models/staging/*/_*__sources.yml`) read exactly these tables.

Conventions that keep the two backends byte-identical:
- timestamps are `TIMESTAMP` without zone, holding UTC (no session time zone
  can shift a date);
- money and quantities are fixed-point decimals, never float;
- raw.events keeps only the two rendered property maps rating needs (every
  JSON column parsed on landing costs ~10% of the landing rate, measured);
  the typed properties are kept where a person compares two versions of an
  event, raw.event_conflicts (and the content hash tells `1` from `"1"`);
- property values are pre-rendered by Python into `properties_text` (the
  spec's text form of every value) and `properties_num` (plain decimals of the
  numeric-readable values), because the two engines print JSON numbers
  differently (DuckDB writes 0.000000001 as 1e-9).

Catalog tables are append-only by `catalog_version`: a load adds a version,
the staging models read the newest one, and old versions stay to explain old
invoices.
"""

from __future__ import annotations

# {json}, {bytes}, {text} are filled per backend.
_COMMON = """
CREATE SCHEMA IF NOT EXISTS raw;

CREATE TABLE IF NOT EXISTS raw.rejected_events (
    origin        VARCHAR NOT NULL,   -- file:/abs/path:LINE or kafka:topic/partition/offset
    payload_hash  VARCHAR NOT NULL,   -- hex blake2b of raw_payload; + origin = idempotency key
    raw_payload   {bytes} NOT NULL,   -- the message as received (over 16 KiB: its first 4 KiB)
    rule          VARCHAR NOT NULL,   -- stable rule code, e.g. quantity.range
    detail        VARCHAR NOT NULL,   -- human-readable reason
    batch_id      VARCHAR NOT NULL,
    rejected_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (origin, payload_hash)
);

CREATE TABLE IF NOT EXISTS raw.event_conflicts (
    event_id      VARCHAR NOT NULL,
    content_hash  {bytes} NOT NULL,
    customer_id   VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    event_ts      TIMESTAMP NOT NULL,
    quantity      DECIMAL(21, 9) NOT NULL,
    properties    {json} NOT NULL,    -- the conflicting event's properties, typed
    origin        VARCHAR NOT NULL,
    batch_id      VARCHAR NOT NULL,
    detected_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (event_id, content_hash)
);

CREATE TABLE IF NOT EXISTS raw.ingest_batches (
    batch_id      VARCHAR PRIMARY KEY,
    source        VARCHAR NOT NULL,
    landed_at     TIMESTAMP NOT NULL,
    accepted      BIGINT NOT NULL,
    duplicates    BIGINT NOT NULL,
    conflicts     BIGINT NOT NULL,
    rejected      BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.catalog_versions (
    catalog_version  INTEGER PRIMARY KEY,
    loaded_at        TIMESTAMP NOT NULL,
    content_sha256   VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    document         {text} NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.catalog_metrics (
    catalog_version  INTEGER NOT NULL,
    metric_code      VARCHAR NOT NULL,
    aggregation      VARCHAR NOT NULL,   -- count | sum | max | unique_count | latest
    field            VARCHAR NOT NULL,   -- 'quantity' or 'properties.<name>'
    property_name    VARCHAR,            -- <name> when field is a property, else NULL
    PRIMARY KEY (catalog_version, metric_code)
);

CREATE TABLE IF NOT EXISTS raw.catalog_plans (
    catalog_version     INTEGER NOT NULL,
    plan_code           VARCHAR NOT NULL,
    currency            VARCHAR NOT NULL,
    billing_interval    VARCHAR NOT NULL,   -- month | year
    fixed_fee           DECIMAL(38, 12),
    minimum_commitment  DECIMAL(38, 12),
    PRIMARY KEY (catalog_version, plan_code)
);

CREATE TABLE IF NOT EXISTS raw.catalog_charges (
    catalog_version  INTEGER NOT NULL,
    plan_code        VARCHAR NOT NULL,
    charge_index     INTEGER NOT NULL,      -- 1-based order within the plan
    metric_code      VARCHAR NOT NULL,
    model            VARCHAR NOT NULL,      -- per_unit | graduated | volume | package
    unit_price       DECIMAL(38, 12),       -- per_unit
    package_size     DECIMAL(38, 12),       -- package
    package_price    DECIMAL(38, 12),       -- package
    free_units       DECIMAL(38, 12),       -- package (0 when absent)
    filter_count     INTEGER NOT NULL,      -- number of rows in catalog_charge_filters
    PRIMARY KEY (catalog_version, plan_code, charge_index)
);

CREATE TABLE IF NOT EXISTS raw.catalog_charge_tiers (
    catalog_version  INTEGER NOT NULL,
    plan_code        VARCHAR NOT NULL,
    charge_index     INTEGER NOT NULL,
    tier_index       INTEGER NOT NULL,      -- 1-based
    lower_bound      DECIMAL(38, 12) NOT NULL,  -- lo_i: 0, then the previous up_to
    up_to            DECIMAL(38, 12),       -- NULL = infinity (last tier)
    unit_price       DECIMAL(38, 12) NOT NULL,
    flat_fee         DECIMAL(38, 12) NOT NULL,  -- 0 when absent
    PRIMARY KEY (catalog_version, plan_code, charge_index, tier_index)
);

CREATE TABLE IF NOT EXISTS raw.catalog_charge_filters (
    catalog_version  INTEGER NOT NULL,
    plan_code        VARCHAR NOT NULL,
    charge_index     INTEGER NOT NULL,
    property_name    VARCHAR NOT NULL,
    property_value   VARCHAR NOT NULL,      -- text form: numbers plain decimal, booleans true/false
    PRIMARY KEY (catalog_version, plan_code, charge_index, property_name)
);

CREATE TABLE IF NOT EXISTS raw.catalog_customers (
    catalog_version  INTEGER NOT NULL,
    customer_id      VARCHAR NOT NULL,
    currency         VARCHAR NOT NULL,
    tax_rate         DECIMAL(38, 12),       -- NULL = no tax line
    PRIMARY KEY (catalog_version, customer_id)
);

CREATE TABLE IF NOT EXISTS raw.catalog_discounts (
    catalog_version  INTEGER NOT NULL,
    customer_id      VARCHAR NOT NULL,
    discount_index   INTEGER NOT NULL,
    percent_off      DECIMAL(38, 12),
    amount_off       DECIMAL(38, 12),
    start_date       DATE,                  -- NULL = open start
    end_date         DATE,                  -- exclusive; NULL = open end
    PRIMARY KEY (catalog_version, customer_id, discount_index)
);

CREATE TABLE IF NOT EXISTS raw.catalog_subscriptions (
    catalog_version  INTEGER NOT NULL,
    subscription_id  VARCHAR NOT NULL,
    customer_id      VARCHAR NOT NULL,
    plan_code        VARCHAR NOT NULL,
    start_date       DATE NOT NULL,
    end_date         DATE,                  -- exclusive; NULL = open
    billing_anchor   VARCHAR NOT NULL,      -- calendar | anniversary
    PRIMARY KEY (catalog_version, subscription_id)
);

-- Alert thresholds (ingestion/notifications/thresholds.py); not read by dbt.
CREATE TABLE IF NOT EXISTS raw.catalog_thresholds (
    catalog_version  INTEGER NOT NULL,
    threshold_id     VARCHAR NOT NULL,      -- <plan|subscription>:<code>:<kind>[:<metric>]:<value>
    plan_code        VARCHAR,               -- declared on a plan: each of its subscriptions
    subscription_id  VARCHAR,               -- or on one subscription
    kind             VARCHAR NOT NULL,      -- usage | spend | commitment
    metric_code      VARCHAR,               -- usage: the metric counted
    threshold_value  DECIMAL(38, 12) NOT NULL,  -- a quantity, an amount or a percentage
    PRIMARY KEY (catalog_version, threshold_id)
);
"""

# The landed events. PostgreSQL partitions by event time (see sinks/postgres.py);
# DuckDB keeps one table. Uniqueness of event_id is enforced by the sinks.
_EVENTS_COLUMNS = """
    event_id         VARCHAR NOT NULL,
    customer_id      VARCHAR NOT NULL,
    metric           VARCHAR NOT NULL,
    event_ts         TIMESTAMP NOT NULL,    -- UTC
    quantity         DECIMAL(21, 9) NOT NULL,
    properties_text  {json} NOT NULL,       -- property -> text form (filters, unique_count)
    properties_num   {json} NOT NULL,       -- property -> plain decimal (sum/max/latest)
    content_hash     {bytes} NOT NULL,
    origin           VARCHAR NOT NULL,
    batch_id         VARCHAR NOT NULL,
    landed_at        TIMESTAMP NOT NULL
"""

DUCKDB_TYPES = {"json": "JSON", "bytes": "BLOB", "text": "VARCHAR"}
POSTGRES_TYPES = {"json": "JSONB", "bytes": "BYTEA", "text": "TEXT"}


def duckdb_ddl() -> str:
    events = f"CREATE TABLE IF NOT EXISTS raw.events ({_EVENTS_COLUMNS});"
    return (_COMMON + events).format(**DUCKDB_TYPES)


POSTGRES_TABLES = (
    "rejected_events", "event_conflicts", "ingest_batches", "catalog_versions", "catalog_metrics",
    "catalog_plans", "catalog_charges", "catalog_charge_tiers", "catalog_charge_filters",
    "catalog_customers", "catalog_discounts", "catalog_subscriptions", "catalog_thresholds",
    "event_ids", "events",
)  # fmt: skip
FUNCTIONS = ("raw.create_events_partition(integer, integer)", "raw.maintain_statistics()")

# Creating a partition needs the owner of raw.events, which no service logs in as
# (ingestion/roles/service_roles.py): the loader calls this function, which runs as the owner
# and makes only a month near today (the sink asks for at most 36 back and 1 ahead), so a
# hostile timestamp cannot make it create partitions without end.
_PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION raw.create_events_partition(year integer, month integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    first_day date := make_date(year, month, 1);
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
BEGIN
    IF first_day < this_month - interval '37 months' OR first_day > this_month + interval '2 months'
    THEN
        RAISE EXCEPTION 'no partition for %-%: only months near today get one', year, month;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS raw.%I PARTITION OF raw.events'
                   ' FOR VALUES FROM (%L) TO (%L)',
                   format('events_y%sm%s', lpad(year::text, 4, '0'), lpad(month::text, 2, '0')),
                   first_day, first_day + interval '1 month');
END $$;
REVOKE ALL ON FUNCTION raw.create_events_partition(integer, integer) FROM PUBLIC;
"""

# What dbt's first hook asks before every build (dbt/macros/statistics.sql says why); only the
# owner of a table may analyze it or summarize its BRIN ranges, hence SECURITY DEFINER.
_STATISTICS_FUNCTION = """
CREATE OR REPLACE FUNCTION raw.maintain_statistics() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stale record;
BEGIN
    ANALYZE raw.catalog_versions, raw.catalog_metrics, raw.catalog_plans, raw.catalog_charges,
        raw.catalog_charge_tiers, raw.catalog_charge_filters, raw.catalog_customers,
        raw.catalog_discounts, raw.catalog_subscriptions, raw.ingest_batches;
    FOR stale IN
        SELECT schemaname, relname FROM pg_stat_user_tables
        WHERE schemaname = 'raw' AND relname LIKE 'events%'
          AND (coalesce(last_analyze, last_autoanalyze) IS NULL
               OR n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000))
    LOOP
        EXECUTE format('ANALYZE %I.%I', stale.schemaname, stale.relname);
    END LOOP;
    PERFORM brin_summarize_new_values(i.indexrelid::regclass)
    FROM pg_index AS i
    JOIN pg_class AS index_class ON index_class.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = index_class.relam
    JOIN pg_class AS table_class ON table_class.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = table_class.relnamespace
    WHERE am.amname = 'brin' AND index_class.relkind = 'i'
      AND n.nspname = 'raw' AND table_class.relname LIKE 'events%';
END $$;
REVOKE ALL ON FUNCTION raw.maintain_statistics() FROM PUBLIC;
"""


def postgres_ddl() -> str:
    """Everything but raw.events, whose shape depends on TimescaleDB (sinks/postgres.py)."""
    ledger = """
CREATE TABLE IF NOT EXISTS raw.event_ids (
    event_id      VARCHAR COLLATE "C" PRIMARY KEY,  -- first write wins: the claim on an id
    content_hash  BYTEA NOT NULL                    -- the winner's, to tell conflicts
);
"""
    return (_COMMON + ledger).format(**POSTGRES_TYPES) + _PARTITION_FUNCTION + _STATISTICS_FUNCTION


def postgres_events_columns() -> str:
    return _EVENTS_COLUMNS.format(**POSTGRES_TYPES)
