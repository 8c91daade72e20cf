-- One invoice per subscription and billing period that ended on or before as_of (spec
-- section 7). status: draft during the grace window after the period end (var
-- invoice_grace_days, default 3), closed after it (section 8).
-- total = subtotal - discount + tax = the sum of the invoice's lines.
select
    {{ invoice_id('subscription_id', 'period_start') }} as invoice_id,
    subscription_id,
    customer_id,
    plan_code,
    period_start,
    period_end,
    invoice_status as status,
    active_days,
    days_in_period,
    fixed_fee_amount,
    usage_amount,
    minimum_topup_amount,
    subtotal,
    discounts_applied,
    discount_amount,
    tax_rate,
    tax_amount,
    total,
    currency,
    currency_exponent
from {{ ref('int_invoice_totals_computed') }}
where is_ended
