-- One invoice per subscription and billing period that ended on or before as_of (spec
-- sections 7 and 8). status: draft during the grace window after the period end (var
-- invoice_grace_days, default 3), closed after it, finalized once `valueverse invoices
-- finalize` has issued it with a number (then every figure is the frozen one).
-- total = subtotal - discount + tax + adjustments = the sum of the invoice's lines.
with

finalized as (
    select * from {{ ref('stg_billing__finalized_invoices') }}
),

adjustments as (
    select target_invoice_id as invoice_id, sum(amount) as adjustment_amount
    from {{ ref('int_invoice_adjustments_computed') }}
    where target_invoice_id is not null
    group by target_invoice_id
),

computed as (
    select
        {{ invoice_id('totals.subscription_id', 'totals.period_start') }} as invoice_id,
        totals.*
    from {{ ref('int_invoice_totals_computed') }} as totals
    where totals.is_ended
),

open_invoices as (
    select
        computed.invoice_id,
        cast(null as varchar) as invoice_number,
        computed.subscription_id,
        computed.customer_id,
        computed.plan_code,
        computed.period_start,
        computed.period_end,
        computed.invoice_status as status,
        computed.active_days,
        computed.days_in_period,
        computed.fixed_fee_amount,
        computed.usage_amount,
        computed.minimum_topup_amount,
        computed.subtotal,
        computed.discounts_applied,
        computed.discount_amount,
        computed.tax_rate,
        computed.tax_amount,
        coalesce(adjustments.adjustment_amount, 0) as adjustment_amount,
        computed.total + coalesce(adjustments.adjustment_amount, 0) as total,
        computed.currency,
        computed.currency_exponent,
        cast(null as timestamp) as finalized_at
    from computed
    left join adjustments on adjustments.invoice_id = computed.invoice_id
    where computed.invoice_id not in (select invoice_id from finalized)
),

finalized_invoices as (
    select
        invoice_id, invoice_number, subscription_id, customer_id, plan_code, period_start,
        period_end, 'finalized' as status, active_days, days_in_period, fixed_fee_amount,
        usage_amount, minimum_topup_amount, subtotal, discounts_applied, discount_amount,
        tax_rate, tax_amount, adjustment_amount, total, currency, currency_exponent, finalized_at
    from finalized
),

all_invoices as (
    select * from open_invoices
    union all select * from finalized_invoices
)

select
    cast(invoice_id as varchar) as invoice_id,
    cast(invoice_number as varchar) as invoice_number,
    cast(subscription_id as varchar) as subscription_id,
    cast(customer_id as varchar) as customer_id,
    cast(plan_code as varchar) as plan_code,
    cast(period_start as date) as period_start,
    cast(period_end as date) as period_end,
    cast(status as varchar) as status,
    cast(active_days as integer) as active_days,
    cast(days_in_period as integer) as days_in_period,
    cast(fixed_fee_amount as {{ money_type() }}) as fixed_fee_amount,
    cast(usage_amount as {{ money_type() }}) as usage_amount,
    cast(minimum_topup_amount as {{ money_type() }}) as minimum_topup_amount,
    cast(subtotal as {{ money_type() }}) as subtotal,
    cast(discounts_applied as bigint) as discounts_applied,
    cast(discount_amount as {{ money_type() }}) as discount_amount,
    cast(tax_rate as decimal(38, 12)) as tax_rate,
    cast(tax_amount as {{ money_type() }}) as tax_amount,
    cast(adjustment_amount as {{ money_type() }}) as adjustment_amount,
    cast(total as {{ money_type() }}) as total,
    cast(currency as varchar) as currency,
    cast(currency_exponent as integer) as currency_exponent,
    cast(finalized_at as timestamp) as finalized_at
from all_invoices
