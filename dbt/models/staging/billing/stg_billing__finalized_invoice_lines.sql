-- The lines of finalized invoices exactly as issued; adjustment lines name the finalized
-- invoice (and the line of it) they correct.
select
    line_id,
    invoice_id,
    subscription_id,
    customer_id,
    plan_code,
    period_start,
    period_end,
    line_order,
    line_type,
    charge_index,
    metric,
    quantity,
    amount_exact,
    amount,
    currency,
    currency_exponent,
    corrected_invoice_id,
    corrected_period_start,
    corrected_period_end,
    adjusted_line_type,
    adjusted_line_order
from {{ source('billing', 'finalized_invoice_lines') }}
