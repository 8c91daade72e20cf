-- Every billing period of every subscription: its dates, the days the subscription is active
-- in it (fixed fees and minimums are prorated by active_days / days_in_period), and where it
-- stands on as_of: open (still running, no invoice yet) or ended (invoiced: the invoice is a
-- draft during the grace window after the period end, then closed).
select
    {{ invoice_id('subscription_id', 'period_start') }} as invoice_id,
    subscription_id,
    customer_id,
    plan_code,
    billing_anchor,
    billing_interval,
    period_number,
    period_start,
    period_end,
    active_from,
    active_to,
    active_days,
    days_in_period,
    case when is_ended then 'ended' else 'open' end as period_status,
    invoice_status,        -- null while the period is open
    as_of,
    currency,
    currency_exponent
from {{ ref('int_subscription_periods_generated') }}
