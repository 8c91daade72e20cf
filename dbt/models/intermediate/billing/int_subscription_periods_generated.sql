-- Every billing period of every subscription (spec section 3), with the days it is active.
--
-- Periods are generated up to a horizon: the later of the invoicing date (as_of) and the
-- newest event's date. So every landed event finds its period, and the period that is
-- still running on as_of shows up (as open, without an invoice).
-- A table: every later model joins it, and its horizon scans the events once per build.
{{ config(materialized='table') }}
with

subscriptions as (
    select * from {{ ref('stg_raw__subscriptions') }}
),

plans as (
    select * from {{ ref('stg_raw__plans') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

horizon as materialized (
    -- materialized: computed once, not once per subscription inside a nested loop
    select
        greatest({{ as_of_date() }}, coalesce(max(event_date), {{ as_of_date() }})) as horizon_date
    from {{ ref('stg_raw__events') }}
),

anchored as (
    -- The date every period of the subscription is counted from:
    -- calendar: the first day of the month (year) the subscription starts in;
    -- anniversary: the start date itself (its day of month, or month and day, repeats).
    select
        subscriptions.*,
        plans.billing_interval,
        plans.currency,
        plans.fixed_fee,
        plans.minimum_commitment,
        case plans.billing_interval when 'year' then 12 else 1 end as months_per_period,
        case
            when subscriptions.billing_anchor = 'anniversary' then subscriptions.start_date
            when plans.billing_interval = 'year' then {{ year_start('subscriptions.start_date') }}
            else {{ month_start('subscriptions.start_date') }}
        end as anchor_date,
        -- the last date that may need a period: the horizon, or the day the subscription ends
        case
            when subscriptions.end_date is null then horizon.horizon_date
            else least(horizon.horizon_date, subscriptions.end_date)
        end as last_date
    from subscriptions
    inner join plans on plans.plan_code = subscriptions.plan_code
    cross join horizon
),

candidate_periods as (
    -- Period k starts k intervals after the anchor. Adding k months to the anchor itself (not
    -- to the previous period's start) gives Stripe's anniversary rule: Jan 31 -> Feb 28 -> Mar 31.
    -- We enumerate one period per month up to last_date (+1) and keep those on the interval grid.
    select
        anchored.*,
        series.k as months_from_anchor,
        {{ add_months('anchored.anchor_date', 'series.k') }} as period_start,
        {{ add_months('anchored.anchor_date', 'series.k + anchored.months_per_period') }} as period_end
    from anchored
    {{ lateral_series(
        '(' ~ year_of('anchored.last_date') ~ ' - ' ~ year_of('anchored.anchor_date') ~ ') * 12 + '
        ~ month_of('anchored.last_date') ~ ' - ' ~ month_of('anchored.anchor_date') ~ ' + 1',
        'series', 'k') }}
    where mod(series.k, anchored.months_per_period) = 0
),

periods as (
    select
        *,
        -- the part of the period the subscription is active: [active_from, active_to)
        greatest(period_start, start_date) as active_from,
        case
            when end_date is not null and end_date < period_end then end_date
            else period_end
        end as active_to
    from candidate_periods
    where period_start <= last_date
      and period_end > start_date
      and (end_date is null or period_start < end_date)
)

select
    periods.subscription_id,
    periods.customer_id,
    periods.plan_code,
    periods.billing_anchor,
    periods.billing_interval,
    cast(row_number() over (
        partition by periods.subscription_id order by periods.period_start
    ) as integer) as period_number,
    periods.period_start,
    periods.period_end,            -- exclusive; always the full period's end (spec section 3)
    periods.active_from,
    periods.active_to,             -- exclusive
    {{ days_between('periods.active_from', 'periods.active_to') }} as active_days,
    {{ days_between('periods.period_start', 'periods.period_end') }} as days_in_period,
    -- invoices exist only for periods that have ended by as_of (spec section 7); an ended
    -- period's invoice is a draft during the grace window, then closed (section 8)
    periods.period_end <= {{ as_of_date() }} as is_ended,
    case
        when periods.period_end > {{ as_of_date() }} then null
        when periods.period_end + {{ var('invoice_grace_days', 3) | int }} <= {{ as_of_date() }}
            then 'closed'
        else 'draft'
    end as invoice_status,
    {{ as_of_date() }} as as_of,
    periods.currency,
    cast(currencies.exponent as integer) as currency_exponent,
    periods.fixed_fee,
    periods.minimum_commitment
from periods
left join currencies on currencies.code = periods.currency
