-- Accepted events no charge bills (marts.unbilled_usage), counted per event month, customer,
-- metric and reason: the dashboards' unbilled figures without scanning events.
select
    cast({{ month_start('event_ts') }} as date) as month,
    cast(customer_id as varchar) as customer_id,
    cast(metric_code as varchar) as metric_code,
    cast(reason as varchar) as reason,
    cast(count(*) as bigint) as events,
    cast(sum(quantity) as {{ qty_type() }}) as quantity
from {{ ref('unbilled_usage') }}
group by {{ month_start('event_ts') }}, customer_id, metric_code, reason
