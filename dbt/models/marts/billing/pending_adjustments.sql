-- Adjustments owed on finalized invoices (late usage, section 8) that no invoice carries yet:
-- the subscription's next invoice has not ended yet (or, for a subscription that ended, the
-- customer has no later invoice in that currency). They move onto that invoice as soon as it
-- exists; finance sees here what is waiting.
select
    corrected_invoice_id,
    corrected_subscription_id as subscription_id,
    customer_id,
    corrected_period_start,
    corrected_period_end,
    adjusted_line_type,
    adjusted_line_order,
    charge_index,
    metric,
    quantity,
    amount,
    currency,
    currency_exponent
from {{ ref('int_invoice_adjustments_computed') }}
where target_invoice_id is null
