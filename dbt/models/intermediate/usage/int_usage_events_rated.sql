-- Where every accepted event goes: one row per (event, charge) the event counts toward, and one
-- row with charge_index null and an unbilled_reason for an event that no charge bills.
--
-- An event counts toward a charge when the charge is in the plan of the event's subscription,
-- is on the event's metric, and every filter of the charge equals the event's property as text
-- (spec section 2); an event matching two charges counts in both. The row also carries the
-- value the charge's aggregation reads (spec section 4).
--
-- This is the one event-sized step (JSON reads, per-event joins); everything after it works on
-- aggregates. So it is incremental over landing batches (DECISIONLOG.md, "Incremental rating"):
--   * a run rates exactly the batches that have no row here yet (every event leaves at least
--     one row, so a rated batch is always visible), however late or out of order they
--     committed, and replaces those batches' rows (delete+insert on batch_id);
--   * rows rated with an older catalog are deleted first (pre_hook): a new catalog version
--     re-rates every event, because subscriptions, charges and filters may all have changed;
--   * every row carries the rating_run that rated it: the aggregation downstream and the scoped
--     tests work on the rows rated since they last ran (DECISIONLOG.md, "Incremental build").
-- depends_on: {{ ref('stg_raw__ingest_batches') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='batch_id',
    on_schema_change='fail',
    pre_hook=[
        "{{ rating_session_settings() }}",
        "{% if is_incremental() %}{{ delete_rows_of_older_catalog(this) }}{% endif %}",
    ],
    post_hook="{{ index_rated_events(this) }}"
) }}

with

{% if is_incremental() and execute %}
{#- The batches not rated yet with the current catalog (rows of an older one are deleted by the
    pre_hook, which runs after this is read), and the earliest landed_at among them: read now
    and written into the SQL as literals, so the planner sees how few events are new and
    PostgreSQL reads them through its BRIN index on raw.events.landed_at (a batch's events
    carry the batch's landed_at). -#}
{%- set unrated = run_query(
      'select batches.batch_id, batches.landed_at from ' ~ ref('stg_raw__ingest_batches')
      ~ ' as batches where not exists (select 1 from ' ~ this
      ~ ' as rated where rated.batch_id = batches.batch_id and rated.catalog_version = '
      ~ current_catalog_version() ~ ')') -%}
{%- set unrated_ids = unrated.columns[0].values() -%}
{%- set unrated_landed = unrated.columns[1].values() -%}
{%- endif %}

attributed as (
    select * from {{ ref('int_usage_events_attributed') }}
    {%- if is_incremental() and execute %}
    {%- if unrated_ids | length == 0 %}
    where 1 = 0    -- every batch is rated already
    {%- elif unrated_ids | length <= 1000 %}
    where batch_id in (
        {%- for batch_id in unrated_ids %}'{{ batch_id | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor -%}
    )
      and landed_at >= {{ timestamp_literal(unrated_landed | min) }}
    {%- else %}
    where batch_id in (
        select batches.batch_id
        from {{ ref('stg_raw__ingest_batches') }} as batches
        where not exists (select 1 from {{ this }} as rated where rated.batch_id = batches.batch_id)
    )
      and landed_at >= {{ timestamp_literal(unrated_landed | min) }}
    {%- endif %}
    {%- endif %}
),

rating_catalog as (
    -- the catalog these rows are rated with, and this build's rating_run: greater than every
    -- rating_run already in the table (downstream models and the scoped tests read "what was
    -- rated since" off it); a UTC timestamp YYYYMMDDHHMMSS keeps it growing across full refreshes
    select
        catalog_version,
        cast(
            {%- if is_incremental() %}
            greatest(
                coalesce((select max(rating_run) from {{ this }}), 0) + 1,
                {{ run_started_at.strftime('%Y%m%d%H%M%S') }}
            )
            {%- else %}
            {{ run_started_at.strftime('%Y%m%d%H%M%S') }}
            {%- endif %}
        as bigint) as rating_run
    from {{ ref('stg_raw__catalog_versions') }}
    where is_current
),

charges as (
    select
        charges.plan_code,
        charges.charge_index,
        charges.metric_code,
        metrics.aggregation,
        metrics.property_name
    from {{ ref('stg_raw__plan_charges') }} as charges
    inner join {{ ref('stg_raw__metrics') }} as metrics
        on metrics.metric_code = charges.metric_code
),

filters as (
    select * from {{ ref('stg_raw__charge_filters') }}
),

candidates as (
    -- the charges of the event's plan that are on the event's metric
    select
        attributed.*,
        charges.charge_index,
        charges.aggregation,
        charges.property_name
    from attributed
    inner join charges
        on charges.plan_code = attributed.plan_code
        and charges.metric_code = attributed.metric_code
),

matched as (
    -- keep a candidate unless one of its charge's filters rejects it. Property values are
    -- compared as text: the landing side rendered numbers as plain decimals and booleans as
    -- true/false, exactly like the catalog's filter values; a missing property never matches.
    -- (NOT EXISTS, not a join back to candidates: one pass over the events on both engines.)
    select candidates.*
    from candidates
    where not exists (
        select 1
        from filters
        where filters.plan_code = candidates.plan_code
          and filters.charge_index = candidates.charge_index
          and coalesce(
                {{ json_text('candidates.properties_text', 'filters.property_name') }}
                    = filters.property_value,
                false) = false
    )
),

field_values as (
    select
        matched.*,
        {{ json_text('matched.properties_text', 'matched.property_name') }} as property_text,
        {{ json_text('matched.properties_num', 'matched.property_name') }} as property_num_text
    from matched
),

billed as (
    select
        event_id, customer_id, metric_code, event_ts, quantity,
        subscription_id, plan_code, period_start, period_end,
        cast(charge_index as integer) as charge_index,
        cast(aggregation as varchar) as aggregation,
        -- the numeric value sum / max / latest read: the quantity, or the property's number
        -- from properties_num (the landing side's list of readable values) when it fits the
        -- quantity type exactly (at most 20 integer and 9 fraction digits)
        cast(case
            when property_name is null then quantity
            when {{ regex_full_match('property_num_text', '-?[0-9]{1,20}(\\.[0-9]{1,9})?') }}
                then cast(property_num_text as {{ qty_type() }})
        end as {{ qty_type() }}) as value_number,
        -- the text unique_count counts: the property's text form
        cast(property_text as varchar) as value_text,
        cast(case
            when aggregation = 'count' then 'not_used'
            when aggregation = 'unique_count' then
                case when property_text is null then 'missing' else 'read' end
            when property_name is null then 'read'
            when property_text is null then 'missing'
            when {{ regex_full_match('property_num_text', '-?[0-9]{1,20}(\\.[0-9]{1,9})?') }} then 'read'
            else 'not_a_number'
        end as varchar) as field_status,
        cast(null as varchar) as unbilled_reason,
        batch_id,
        landed_at
    from field_values
),

unbilled as (
    -- events that no charge bills, with the first reason that applies (spec section 3)
    select
        event_id, customer_id, metric_code, event_ts, quantity,
        subscription_id, plan_code, period_start, period_end,
        cast(null as integer) as charge_index,
        cast(null as varchar) as aggregation,
        cast(null as {{ qty_type() }}) as value_number,
        cast(null as varchar) as value_text,
        cast(null as varchar) as field_status,
        cast(case
            when attributed.subscription_id is null then 'no_active_subscription'
            when not exists (
                select 1 from charges
                where charges.plan_code = attributed.plan_code
                  and charges.metric_code = attributed.metric_code
            ) then 'metric_not_in_plan'
            else 'no_filter_matches'
        end as varchar) as unbilled_reason,
        batch_id,
        landed_at
    from attributed
    where not exists (select 1 from matched where matched.event_id = attributed.event_id)
),

rated as (
    select * from billed
    union all
    select * from unbilled
)

select
    rated.*,
    rating_catalog.catalog_version,   -- the catalog these rows were rated with (see pre_hook)
    rating_catalog.rating_run         -- the build that rated them (see rating_catalog)
from rated
cross join rating_catalog
