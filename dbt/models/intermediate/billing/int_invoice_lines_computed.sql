-- Invoice lines as the current events and catalog compute them (spec section 7), for every
-- ended period, in invoice order (line_order, then charge_index):
--   1 fixed_fee (if the plan has one), 2 usage (one per charge, also when q = 0),
--   3 minimum_commitment (only if > 0), 4 discount (only if > 0, negative), 5 tax (with a tax_rate).
-- amount is the line's exact amount rounded once to the currency's minor unit.
-- Only periods that ended on or before as_of are invoiced. The mart invoice_lines shows these
-- for invoices not finalized yet; for finalized ones it shows the frozen copy, and the
-- difference (late usage) is billed by int_invoice_adjustments_computed (section 8).
{{ config(materialized='table') }}
with

-- only periods that ended on or before as_of have an invoice
totals as (
    select * from {{ ref('int_invoice_totals_computed') }}
    where is_ended
),

usage as (
    select * from {{ ref('int_charge_amounts_priced') }}
    where is_ended
),

fixed_fee_lines as (
    select
        subscription_id, customer_id, plan_code, period_start, period_end, invoice_status,
        1 as line_order,
        'fixed_fee' as line_type,
        cast(null as integer) as charge_index,
        cast(null as varchar) as metric,
        cast(null as {{ qty_type() }}) as quantity,
        cast(fixed_fee_exact as {{ exact_type() }}) as amount_exact,
        cast(fixed_fee_amount as {{ money_type() }}) as amount,
        currency, currency_exponent
    from totals
    where fixed_fee is not null
),

usage_lines as (
    select
        subscription_id, customer_id, plan_code, period_start, period_end, invoice_status,
        2 as line_order,
        'usage' as line_type,
        cast(charge_index as integer) as charge_index,
        cast(metric_code as varchar) as metric,
        cast(quantity as {{ qty_type() }}) as quantity,
        cast(amount_exact as {{ exact_type() }}) as amount_exact,
        cast(amount as {{ money_type() }}) as amount,
        currency, currency_exponent
    from usage
),

minimum_commitment_lines as (
    select
        subscription_id, customer_id, plan_code, period_start, period_end, invoice_status,
        3 as line_order,
        'minimum_commitment' as line_type,
        cast(null as integer) as charge_index,
        cast(null as varchar) as metric,
        cast(null as {{ qty_type() }}) as quantity,
        cast(minimum_topup_exact as {{ exact_type() }}) as amount_exact,
        cast(minimum_topup_amount as {{ money_type() }}) as amount,
        currency, currency_exponent
    from totals
    where minimum_topup_amount > 0
),

discount_lines as (
    select
        subscription_id, customer_id, plan_code, period_start, period_end, invoice_status,
        4 as line_order,
        'discount' as line_type,
        cast(null as integer) as charge_index,
        cast(null as varchar) as metric,
        cast(null as {{ qty_type() }}) as quantity,
        cast(-discount_exact as {{ exact_type() }}) as amount_exact,
        cast(-discount_amount as {{ money_type() }}) as amount,
        currency, currency_exponent
    from totals
    where discount_amount > 0
),

tax_lines as (
    select
        subscription_id, customer_id, plan_code, period_start, period_end, invoice_status,
        5 as line_order,
        'tax' as line_type,
        cast(null as integer) as charge_index,
        cast(null as varchar) as metric,
        cast(null as {{ qty_type() }}) as quantity,
        cast(tax_exact as {{ exact_type() }}) as amount_exact,
        cast(tax_amount as {{ money_type() }}) as amount,
        currency, currency_exponent
    from totals
    where tax_rate is not null
),

all_lines as (
    select * from fixed_fee_lines
    union all select * from usage_lines
    union all select * from minimum_commitment_lines
    union all select * from discount_lines
    union all select * from tax_lines
)

select
    {{ invoice_line_id('subscription_id', 'period_start', 'line_order', 'charge_index') }} as line_id,
    {{ invoice_id('subscription_id', 'period_start') }} as invoice_id,
    subscription_id,
    customer_id,
    plan_code,
    period_start,
    period_end,
    invoice_status,
    line_order,
    line_type,
    charge_index,
    metric,
    quantity,
    amount_exact,
    amount,
    currency,
    currency_exponent
from all_lines
