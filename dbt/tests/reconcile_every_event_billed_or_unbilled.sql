-- Every accepted event is either behind at least one usage line (once per charge it matches:
-- the unique test on invoice_line_events) or in unbilled_usage, never both, never neither.
-- Event-sized, so scoped (DECISIONLOG.md, "Scoped tests"): the events landed since the last
-- verified build, every event of a batch not verified yet; their rated rows are looked up by
-- batch (a batch's events are rated together). Older events passed in an earlier build.
-- depends_on: {{ ref('int_usage_events_rated') }}
{%- set condition = unverified_events_condition() | trim %}
with events as (
    select event_id, batch_id
    from {{ ref('stg_raw__events') }}
    where {{ condition }}
),
batches as (
    select distinct batch_id from events
),
billed as (
    select distinct event_id from {{ ref('invoice_line_events') }}
    {%- if condition != 'true' %}
    where batch_id in (select batch_id from batches)
    {%- endif %}
),
unbilled as (
    select event_id from {{ ref('unbilled_usage') }}
    {%- if condition != 'true' %}
    where batch_id in (select batch_id from batches)
    {%- endif %}
)
select events.event_id, billed.event_id as billed_id, unbilled.event_id as unbilled_id
from events
left join billed on billed.event_id = events.event_id
left join unbilled on unbilled.event_id = events.event_id
where (billed.event_id is null) = (unbilled.event_id is null)
