-- Accepted events that no charge bills (spec section 3): kept, never dropped, and reported by
-- the data quality checks. reason, the first that applies:
--   no_active_subscription  the customer has no subscription active on the event's UTC date
--   metric_not_in_plan      the subscription's plan has no charge on the event's metric
--   no_filter_matches       the plan charges the metric, but every such charge's filters reject it
-- A view over the incremental int_usage_events_rated (see invoice_line_events).
{{ config(materialized='view') }}
select
    event_id,
    customer_id,
    metric_code,
    event_ts,
    quantity,
    subscription_id,
    plan_code,
    period_start,
    unbilled_reason as reason,
    batch_id,
    landed_at,
    rating_run          -- the build that rated the event (int_usage_events_rated)
from {{ ref('int_usage_events_rated') }}
where charge_index is null
