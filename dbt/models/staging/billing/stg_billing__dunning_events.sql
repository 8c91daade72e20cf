-- Dunning steps, one row per invoice, step and attempt (append-only).
select
    invoice_id,
    event_type,
    attempt_no,
    due_at,
    detail,
    recorded_at
from {{ source('billing', 'dunning_events') }}
