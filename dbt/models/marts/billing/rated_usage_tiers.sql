-- The tier breakdown of graduated and volume usage lines: for each tier, the units it billed,
-- whether its flat fee applied, and its exact amount. Sums to rated_usage.amount_exact.
select
    {{ invoice_line_id('subscription_id', 'period_start', 2, 'charge_index') }} as line_id,
    subscription_id,
    period_start,
    charge_index,
    model,
    quantity,
    tier_index,
    lower_bound,
    up_to,
    unit_price,
    flat_fee,
    billed_units,
    flat_fee_applies,
    amount_exact
from {{ ref('int_charge_tiers_priced') }}
