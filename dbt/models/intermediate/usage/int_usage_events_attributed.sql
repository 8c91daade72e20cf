-- Each accepted event, attributed (spec section 3) to the subscription of its customer that is
-- active on the event's UTC date, and to that subscription's period containing the date.
-- Events without one keep null subscription columns (they become unbilled usage).
-- Subscriptions of one customer never overlap (the catalog loader refuses that), so an event
-- finds at most one subscription.
with

events as (
    select * from {{ ref('stg_raw__events') }}
),

subscriptions as (
    select * from {{ ref('stg_raw__subscriptions') }}
),

periods as (
    select subscription_id, period_start, period_end
    from {{ ref('int_subscription_periods_generated') }}
)

select
    events.event_id,
    events.customer_id,
    events.metric_code,
    events.event_ts,
    events.event_date,
    events.quantity,
    events.properties_text,
    events.properties_num,
    events.batch_id,
    events.landed_at,
    subscriptions.subscription_id,
    subscriptions.plan_code,
    periods.period_start,
    periods.period_end
from events
left join subscriptions
    on subscriptions.customer_id = events.customer_id
    and subscriptions.start_date <= events.event_date
    and (subscriptions.end_date is null or events.event_date < subscriptions.end_date)
left join periods
    on periods.subscription_id = subscriptions.subscription_id
    and periods.period_start <= events.event_date
    and events.event_date < periods.period_end
