-- The aggregated quantity q of every charge in every billing period (spec section 4),
-- including periods where nothing happened (q = 0: the invoice still shows a usage line).
-- A table of periods x charges (small: no event-sized work here; the totals over events come
-- from the incremental int_charge_event_totals_aggregated), read by pricing and the marts.
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

event_totals as (
    -- the event-sized aggregation, done incrementally (int_charge_event_totals_aggregated)
    select * from {{ ref('int_charge_event_totals_aggregated') }}
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
        when 'latest' then cast(coalesce(event_totals.latest_value, 0) as {{ qty_type() }})
    end as {{ qty_type() }}) as quantity
from periods
inner join charges
    on charges.plan_code = periods.plan_code
left join event_totals
    on event_totals.subscription_id = periods.subscription_id
    and event_totals.period_start = periods.period_start
    and event_totals.charge_index = charges.charge_index
