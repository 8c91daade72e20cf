-- Invoice lines of every period that ended on or before as_of (spec sections 7 and 8), in
-- invoice order: 1 fixed_fee, 2 usage (one per charge), 3 minimum_commitment, 4 discount
-- (negative), 5 tax, then 6 adjustment lines (late usage on earlier, finalized invoices, in
-- the order of the period they correct, then of the line they change).
--   finalized invoices: the lines exactly as issued (billing.finalized_invoice_lines);
--   other invoices: the lines computed now, plus the adjustments billed on them.
-- `valueverse invoices export` writes these lines as invoice_lines.csv.
with

finalized_lines as (
    select
        line_id, invoice_id, subscription_id, customer_id, plan_code, period_start, period_end,
        'finalized' as invoice_status,
        line_order, line_type, charge_index, metric, quantity, amount_exact, amount,
        currency, currency_exponent,
        corrected_invoice_id, corrected_period_start, corrected_period_end,
        adjusted_line_type, adjusted_line_order
    from {{ ref('stg_billing__finalized_invoice_lines') }}
),

computed_lines as (
    select
        line_id, invoice_id, subscription_id, customer_id, plan_code, period_start, period_end,
        invoice_status,
        line_order, line_type, charge_index, metric, quantity, amount_exact, amount,
        currency, currency_exponent,
        cast(null as varchar) as corrected_invoice_id,
        cast(null as date) as corrected_period_start,
        cast(null as date) as corrected_period_end,
        cast(null as varchar) as adjusted_line_type,
        cast(null as integer) as adjusted_line_order
    from {{ ref('int_invoice_lines_computed') }}
    where invoice_id not in (select invoice_id from {{ ref('stg_billing__finalized_invoices') }})
),

adjustment_lines as (
    select
        target_invoice_id || '/6/' || corrected_invoice_id || '/'
            || cast(adjusted_line_order as varchar) || '/'
            || cast(coalesce(charge_index, 0) as varchar) as line_id,
        target_invoice_id as invoice_id,
        subscription_id, customer_id, plan_code, period_start, period_end, invoice_status,
        6 as line_order,
        'adjustment' as line_type,
        charge_index,
        metric,
        quantity,
        cast(amount as {{ exact_type() }}) as amount_exact,
        amount,
        currency, currency_exponent,
        corrected_invoice_id, corrected_period_start, corrected_period_end,
        adjusted_line_type, adjusted_line_order
    from {{ ref('int_invoice_adjustments_computed') }}
    where target_invoice_id is not null
),

all_lines as (
    select * from finalized_lines
    union all select * from computed_lines
    union all select * from adjustment_lines
)

select
    cast(line_id as varchar) as line_id,
    cast(invoice_id as varchar) as invoice_id,
    cast(subscription_id as varchar) as subscription_id,
    cast(customer_id as varchar) as customer_id,
    cast(plan_code as varchar) as plan_code,
    cast(period_start as date) as period_start,
    cast(period_end as date) as period_end,
    cast(invoice_status as varchar) as invoice_status,
    cast(line_order as integer) as line_order,
    cast(line_type as varchar) as line_type,
    cast(charge_index as integer) as charge_index,
    cast(metric as varchar) as metric,
    cast(quantity as {{ qty_type() }}) as quantity,
    cast(amount_exact as {{ exact_type() }}) as amount_exact,
    cast(amount as {{ money_type() }}) as amount,
    cast(currency as varchar) as currency,
    cast(currency_exponent as integer) as currency_exponent,
    cast(corrected_invoice_id as varchar) as corrected_invoice_id,
    cast(corrected_period_start as date) as corrected_period_start,
    cast(corrected_period_end as date) as corrected_period_end,
    cast(adjusted_line_type as varchar) as adjusted_line_type,
    cast(adjusted_line_order as integer) as adjusted_line_order
from all_lines
