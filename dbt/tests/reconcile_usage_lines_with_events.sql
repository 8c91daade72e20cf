-- Each rated usage line's event_count is the number of events invoice_line_events lists for
-- it, and once its period has ended it is on the invoice with the same q and amount.
with line_events as (
    select line_id, count(*) as events_listed
    from {{ ref('invoice_line_events') }}
    group by line_id
)
select rated.line_id, rated.event_count, line_events.events_listed, lines.line_id as invoice_line
from {{ ref('rated_usage') }} as rated
left join line_events on line_events.line_id = rated.line_id
left join {{ ref('invoice_lines') }} as lines
    on lines.line_id = rated.line_id
    and lines.line_type = 'usage'
    and lines.quantity = rated.quantity
    and lines.amount = rated.amount
where rated.event_count <> coalesce(line_events.events_listed, 0)
   or (rated.period_status = 'ended' and lines.line_id is null)
