-- Usage rated per subscription, period and charge: the aggregated quantity q, the events behind
-- it, how it was priced, the exact amount and the line amount (rounded once). Also for periods
-- still open on as_of (usage to date); those have no invoice line yet.
select
    {{ invoice_line_id('subscription_id', 'period_start', 2, 'charge_index') }} as line_id,
    {{ invoice_id('subscription_id', 'period_start') }} as invoice_id,
    subscription_id,
    customer_id,
    plan_code,
    period_start,
    period_end,
    case when is_ended then 'ended' else 'open' end as period_status,  -- open: usage to date
    invoice_status,
    charge_index,
    metric_code,
    aggregation,
    field,
    model,
    quantity,
    event_count,          -- events matching the charge (metric and filters)
    values_read,          -- of those, events whose field could be read (sum/max/latest/unique_count)
    first_event_at,
    last_event_at,
    unit_price,           -- per_unit
    package_count,        -- package: packages billed
    tiers_used,           -- graduated/volume: tiers with units or a flat fee (details: rated_usage_tiers)
    highest_tier_used,
    amount_exact,
    amount,
    currency,
    currency_exponent
from {{ ref('int_charge_amounts_priced') }}
