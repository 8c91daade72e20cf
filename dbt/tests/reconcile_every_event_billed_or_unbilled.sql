-- Every accepted event is either behind at least one usage line (once per charge it matches:
-- the unique test on invoice_line_events) or in unbilled_usage, never both, never neither.
with billed as (
    select distinct event_id from {{ ref('invoice_line_events') }}
),
unbilled as (
    select event_id from {{ ref('unbilled_usage') }}
)
select events.event_id, billed.event_id as billed_id, unbilled.event_id as unbilled_id
from {{ ref('stg_raw__events') }} as events
left join billed on billed.event_id = events.event_id
left join unbilled on unbilled.event_id = events.event_id
where (billed.event_id is null) = (unbilled.event_id is null)
