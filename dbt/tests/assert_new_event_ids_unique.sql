-- event_id is the idempotency key (spec section 1): not null, and unique among all landed
-- events. Event-sized, so scoped (DECISIONLOG.md, "Scoped tests"): the events landed since the
-- last verified build are compared with each other and with every rated event of another
-- batch (every older event is rated: reconcile_every_event_billed_or_unbilled checked it when
-- it was new, so this compares them with all landed events). Without a verified build every
-- event is new and they are compared with each other only.
-- depends_on: {{ ref('int_usage_events_rated') }}
{%- set condition = unverified_events_condition() | trim %}
with new_events as (
    select event_id, batch_id from {{ ref('stg_raw__events') }}
    where {{ condition }}
)
select event_id, count(*) as row_count
from new_events
group by event_id
having count(*) > 1 or event_id is null
{%- if condition != 'true' %}
union all
select new_events.event_id, 2 as row_count
from new_events
inner join {{ ref('int_usage_events_rated') }} as rated
    on rated.event_id = new_events.event_id
    and rated.batch_id <> new_events.batch_id
{%- endif %}
