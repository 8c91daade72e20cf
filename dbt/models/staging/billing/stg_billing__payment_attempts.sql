-- Every recorded state of every payment attempt (append-only; ingestion/payments/store.py).
select
    attempt_id,
    state_no,
    invoice_id,
    invoice_number,
    customer_id,
    attempt_no,
    idempotency_key,
    amount_minor,
    amount_received_minor,
    currency,
    currency_exponent,
    status,
    stripe_payment_intent_id,
    decline_code,
    decline_message,
    source,
    recorded_at
from {{ source('billing', 'payment_attempts') }}
