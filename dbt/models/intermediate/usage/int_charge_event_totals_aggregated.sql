-- The event totals behind every charge in every billing period (spec section 4), one row per
-- (subscription, period, charge) with at least one matching event: how many events, how many
-- had a readable field, their sum, max, latest value and first/last time, and the number of
-- distinct values (from int_charge_distinct_values_collected).
--
-- The aggregation over events, incremental (DECISIONLOG.md, "Incremental build"): a build reads
-- only the rated rows with a rating_run above this table's high-water mark (rated_through) and
-- merges their totals into the rows of the periods they touch (delete+insert of those rows).
-- Every total is mergeable: counts and sums add up, max/min/first/last take the greater or
-- smaller, `latest` keeps the (timestamp, event_id) that is greater, and the distinct count is
-- recounted from the distinct values of the touched periods. Deltas are never added twice: a row
-- is rewritten with the new high-water mark in the same statement that adds the delta, and rated
-- rows are never changed in place (a batch is rated once; re-rating replaces every row and the
-- pre_hook then empties this table, see int_charge_distinct_values_collected).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['subscription_id', 'period_start', 'charge_index'],
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}{{ delete_stale_aggregates(this) }}{% endif %}"
) }}
with

matched as (
    -- the (event, charge) pairs rated since this table was last built; unbilled events have none
    select * from {{ ref('int_usage_events_rated') }}
    where charge_index is not null
    {% if is_incremental() %}
      and rating_run > {{ aggregate_high_water_mark(this) }}
    {% endif %}
),

new_totals as (
    select
        subscription_id,
        period_start,
        charge_index,
        count(*) as event_count,                -- events that match the charge (metric + filters)
        count(case when field_status = 'read' then 1 end) as values_read,
        min(event_ts) as first_event_at,
        max(event_ts) as last_event_at,
        cast(sum(case when field_status = 'read' then value_number end) as {{ qty_type() }})
            as sum_value,
        cast(max(case when field_status = 'read' then value_number end) as {{ qty_type() }})
            as max_value
    from matched
    group by subscription_id, period_start, charge_index
),

new_latest as (
    -- `latest`: the value of the last event by timestamp; a tie goes to the greatest event_id,
    -- comparing ids by code point
    select subscription_id, period_start, charge_index, event_ts, event_id, value_number
    from (
        select
            matched.*,
            row_number() over (
                partition by subscription_id, period_start, charge_index
                order by event_ts desc, {{ collate_c('event_id') }} desc
            ) as recency_rank
        from matched
        where aggregation = 'latest' and field_status = 'read'
    ) as ranked
    where recency_rank = 1
),

{% if is_incremental() %}
previous as (
    select stored.*
    from {{ this }} as stored
    inner join new_totals
        on new_totals.subscription_id = stored.subscription_id
        and new_totals.period_start = stored.period_start
        and new_totals.charge_index = stored.charge_index
),
{% endif %}

distinct_counts as (
    select
        values_seen.subscription_id,
        values_seen.period_start,
        values_seen.charge_index,
        count(*) as distinct_values
    from {{ ref('int_charge_distinct_values_collected') }} as values_seen
    inner join new_totals
        on new_totals.subscription_id = values_seen.subscription_id
        and new_totals.period_start = values_seen.period_start
        and new_totals.charge_index = values_seen.charge_index
    group by values_seen.subscription_id, values_seen.period_start, values_seen.charge_index
),

merged as (
    select
        new_totals.subscription_id,
        new_totals.period_start,
        new_totals.charge_index,
        {%- if is_incremental() %}
        new_totals.event_count + coalesce(previous.event_count, 0) as event_count,
        new_totals.values_read + coalesce(previous.values_read, 0) as values_read,
        case
            when previous.first_event_at is null or new_totals.first_event_at < previous.first_event_at
                then new_totals.first_event_at
            else previous.first_event_at
        end as first_event_at,
        case
            when previous.last_event_at is null or new_totals.last_event_at > previous.last_event_at
                then new_totals.last_event_at
            else previous.last_event_at
        end as last_event_at,
        cast(case
            when previous.sum_value is null then new_totals.sum_value
            when new_totals.sum_value is null then previous.sum_value
            else new_totals.sum_value + previous.sum_value
        end as {{ qty_type() }}) as sum_value,
        cast(case
            when previous.max_value is null then new_totals.max_value
            when new_totals.max_value is null or previous.max_value >= new_totals.max_value
                then previous.max_value
            else new_totals.max_value
        end as {{ qty_type() }}) as max_value,
        -- latest: the newer of the stored and the new candidate by (timestamp, event_id)
        case
            when previous.latest_event_id is null
              or (new_latest.event_id is not null
                  and (new_latest.event_ts > previous.latest_event_ts
                       or (new_latest.event_ts = previous.latest_event_ts
                           and {{ collate_c('new_latest.event_id') }}
                               > {{ collate_c('previous.latest_event_id') }})))
                then 'new'
            else 'previous'
        end as latest_from,
        previous.latest_event_ts as previous_latest_event_ts,
        previous.latest_event_id as previous_latest_event_id,
        previous.latest_value as previous_latest_value,
        {%- else %}
        new_totals.event_count,
        new_totals.values_read,
        new_totals.first_event_at,
        new_totals.last_event_at,
        new_totals.sum_value,
        new_totals.max_value,
        'new' as latest_from,
        cast(null as timestamp) as previous_latest_event_ts,
        cast(null as varchar) as previous_latest_event_id,
        cast(null as {{ qty_type() }}) as previous_latest_value,
        {%- endif %}
        new_latest.event_ts as new_latest_event_ts,
        new_latest.event_id as new_latest_event_id,
        new_latest.value_number as new_latest_value
    from new_totals
    {%- if is_incremental() %}
    left join previous
        on previous.subscription_id = new_totals.subscription_id
        and previous.period_start = new_totals.period_start
        and previous.charge_index = new_totals.charge_index
    {%- endif %}
    left join new_latest
        on new_latest.subscription_id = new_totals.subscription_id
        and new_latest.period_start = new_totals.period_start
        and new_latest.charge_index = new_totals.charge_index
)

select
    merged.subscription_id,
    merged.period_start,
    cast(merged.charge_index as integer) as charge_index,
    cast(merged.event_count as bigint) as event_count,
    cast(merged.values_read as bigint) as values_read,
    merged.first_event_at,
    merged.last_event_at,
    merged.sum_value,
    merged.max_value,
    cast(coalesce(distinct_counts.distinct_values, 0) as bigint) as distinct_values,
    cast(case when merged.latest_from = 'new' then merged.new_latest_event_ts
              else merged.previous_latest_event_ts end as timestamp) as latest_event_ts,
    cast(case when merged.latest_from = 'new' then merged.new_latest_event_id
              else merged.previous_latest_event_id end as varchar) as latest_event_id,
    cast(case when merged.latest_from = 'new' then merged.new_latest_value
              else merged.previous_latest_value end as {{ qty_type() }}) as latest_value,
    {{ aggregate_state_columns() }}
from merged
left join distinct_counts
    on distinct_counts.subscription_id = merged.subscription_id
    and distinct_counts.period_start = merged.period_start
    and distinct_counts.charge_index = merged.charge_index
