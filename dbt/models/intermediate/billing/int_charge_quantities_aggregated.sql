-- The aggregated quantity q of every charge in every billing period (spec section 4),
-- including periods where nothing happened (q = 0: the invoice still shows a usage line).
-- A table: the event-sized aggregation runs once per build, not once per mart reading it.
{{ config(materialized='table') }}
with

periods as (
    select * from {{ ref('int_subscription_periods_generated') }}
),

charges as (
    select
        charges.*,
        metrics.aggregation,
        metrics.field
    from {{ ref('stg_raw__plan_charges') }} as charges
    inner join {{ ref('stg_raw__metrics') }} as metrics
        on metrics.metric_code = charges.metric_code
),

matched as (
    select * from {{ ref('int_usage_events_rated') }}
    where charge_index is not null    -- the (event, charge) pairs; unbilled events have none
),

event_totals as (
    select
        subscription_id,
        period_start,
        charge_index,
        count(*) as event_count,                -- events that match the charge (metric + filters)
        count(case when field_status = 'read' then 1 end) as values_read,
        min(event_ts) as first_event_at,
        max(event_ts) as last_event_at,
        sum(case when field_status = 'read' then value_number end) as sum_value,
        max(case when field_status = 'read' then value_number end) as max_value,
        count(distinct case when field_status = 'read' then value_text end) as distinct_values
    from matched
    group by subscription_id, period_start, charge_index
),

latest_values as (
    -- `latest`: the value of the last event by timestamp; a tie goes to the greatest event_id,
    -- comparing ids by code point
    select subscription_id, period_start, charge_index, value_number as latest_value
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
)

select
    periods.subscription_id,
    periods.customer_id,
    periods.plan_code,
    periods.period_start,
    periods.period_end,
    periods.is_ended,
    periods.invoice_status,
    periods.currency,
    periods.currency_exponent,
    charges.charge_index,
    charges.metric_code,
    charges.aggregation,
    charges.field,
    charges.model,
    charges.unit_price,
    charges.package_size,
    charges.package_price,
    charges.free_units,
    cast(coalesce(event_totals.event_count, 0) as bigint) as event_count,
    cast(coalesce(event_totals.values_read, 0) as bigint) as values_read,
    event_totals.first_event_at,
    event_totals.last_event_at,
    -- every branch is cast to one type: DuckDB would otherwise unify decimal scales lossily
    cast(case charges.aggregation
        when 'count' then cast(coalesce(event_totals.event_count, 0) as {{ qty_type() }})
        when 'sum' then cast(coalesce(event_totals.sum_value, 0) as {{ qty_type() }})
        when 'max' then cast(coalesce(event_totals.max_value, 0) as {{ qty_type() }})
        when 'unique_count' then cast(coalesce(event_totals.distinct_values, 0) as {{ qty_type() }})
        when 'latest' then cast(coalesce(latest_values.latest_value, 0) as {{ qty_type() }})
    end as {{ qty_type() }}) as quantity
from periods
inner join charges
    on charges.plan_code = periods.plan_code
left join event_totals
    on event_totals.subscription_id = periods.subscription_id
    and event_totals.period_start = periods.period_start
    and event_totals.charge_index = charges.charge_index
left join latest_values
    on latest_values.subscription_id = periods.subscription_id
    and latest_values.period_start = periods.period_start
    and latest_values.charge_index = charges.charge_index
