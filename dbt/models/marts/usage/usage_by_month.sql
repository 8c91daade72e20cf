-- Usage per month, currency, customer, plan and metric (DECISIONLOG.md, "Usage and pipeline
-- marts"): marts.rated_usage summed by the month its billing period starts, so a period
-- still open counts as usage to date (has_open_period). quantity sums the charges' aggregated
-- quantities; amount sums the rounded usage lines. Pre-aggregated for the dashboards.
select
    cast({{ month_start('period_start') }} as date) as month,
    cast(currency as varchar) as currency,
    cast(customer_id as varchar) as customer_id,
    cast(plan_code as varchar) as plan_code,
    cast(metric_code as varchar) as metric_code,
    cast(max(currency_exponent) as integer) as currency_exponent,
    cast(sum(quantity) as {{ qty_type() }}) as quantity,
    cast(sum(event_count) as bigint) as event_count,
    cast(sum(amount) as {{ money_type() }}) as amount,
    cast(max(case when period_status = 'open' then 1 else 0 end) = 1 as boolean) as has_open_period
from {{ ref('rated_usage') }}
group by {{ month_start('period_start') }}, currency, customer_id, plan_code, metric_code
