-- Landing batches: what arrived when, with the landing counts.
select
    batch_id,
    source,
    landed_at,
    accepted,
    duplicates,
    conflicts,
    rejected
from {{ source('raw', 'ingest_batches') }}
