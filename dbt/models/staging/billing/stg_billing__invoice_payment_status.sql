-- Payment status per invoice with attempts, derived by the store's view from the attempts
-- and dunning events (the collector decides what to charge from the same view).
select
    invoice_id,
    payment_status,
    attempts,
    last_attempt_no,
    last_attempt_at,
    amount_paid_minor,
    paid_at,
    first_failed_at,
    uncollectible_at
from {{ source('billing', 'invoice_payment_status') }}
