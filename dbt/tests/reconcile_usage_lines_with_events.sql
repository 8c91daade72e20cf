-- Each rated usage line's event_count is the number of events invoice_line_events lists for
-- it, and once its period has ended it is on the computed invoice with the same q and amount
-- (a finalized invoice may show less: late usage is billed as adjustments).
-- The event count is recounted for the lines that events rated since the last verified build
-- touched (the lines whose totals were merged incrementally since then); the other lines'
-- totals have not changed since they passed (DECISIONLOG.md, "Scoped tests"). Without a
-- verified build every line is checked, also lines that list no event.
with touched as (
    select distinct subscription_id, period_start, charge_index
    from {{ ref('int_usage_events_rated') }}
    where charge_index is not null
      and rating_run > {{ verified_through() }}
),
line_events as (
    select
        line_events.subscription_id,
        line_events.period_start,
        line_events.charge_index,
        count(*) as events_listed
    from {{ ref('invoice_line_events') }} as line_events
    where exists (
        select 1 from touched
        where touched.subscription_id = line_events.subscription_id
          and touched.period_start = line_events.period_start
          and touched.charge_index = line_events.charge_index
    )
    group by line_events.subscription_id, line_events.period_start, line_events.charge_index
)
select rated.line_id, rated.event_count, line_events.events_listed, lines.line_id as invoice_line
from {{ ref('rated_usage') }} as rated
left join touched
    on touched.subscription_id = rated.subscription_id
    and touched.period_start = rated.period_start
    and touched.charge_index = rated.charge_index
left join line_events
    on line_events.subscription_id = rated.subscription_id
    and line_events.period_start = rated.period_start
    and line_events.charge_index = rated.charge_index
left join {{ ref('int_invoice_lines_computed') }} as lines
    on lines.line_id = rated.line_id
    and lines.line_type = 'usage'
    and lines.quantity = rated.quantity
    and lines.amount = rated.amount
where ((touched.subscription_id is not null or {{ verified_through() }} = -1)
       and rated.event_count <> coalesce(line_events.events_listed, 0))
   or (rated.period_status = 'ended' and lines.line_id is null)
