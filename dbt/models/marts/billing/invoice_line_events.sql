-- The events behind each usage line: one row per (event, charge) that the event counts toward.
-- A view: the rows already live in the incremental int_usage_events_rated; copying a million
-- event rows into a table on every build would undo the incremental rating.
{{ config(materialized='view') }}
-- field_status says whether the aggregation could read the event's field: read, not_used (count),
-- missing (no such property) or not_a_number (sum/max/latest skip it, spec section 4).
select
    {{ invoice_line_id('subscription_id', 'period_start', 2, 'charge_index') }} as line_id,
    {{ invoice_id('subscription_id', 'period_start') }} as invoice_id,
    event_id,
    subscription_id,
    period_start,
    charge_index,
    metric_code,
    event_ts,
    field_status,
    value_number,
    value_text,
    batch_id,
    landed_at,
    rating_run          -- the build that rated the event (int_usage_events_rated)
from {{ ref('int_usage_events_rated') }}
where charge_index is not null
