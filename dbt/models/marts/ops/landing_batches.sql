-- Every landing batch with the span of event times it carried: the Pipeline dashboard's
-- landing lag (landed_at - newest_event_at) and newest event without scanning events.
with

spans as (
    select batch_id, min(event_ts) as oldest_event_at, max(event_ts) as newest_event_at
    from {{ ref('int_usage_events_rated') }}
    group by batch_id
)

select
    cast(batches.batch_id as varchar) as batch_id,
    cast(batches.source as varchar) as source,
    cast(batches.landed_at as timestamp) as landed_at,
    cast(batches.accepted as bigint) as accepted,
    cast(batches.duplicates as bigint) as duplicates,
    cast(batches.conflicts as bigint) as conflicts,
    cast(batches.rejected as bigint) as rejected,
    cast(spans.oldest_event_at as timestamp) as oldest_event_at,
    cast(spans.newest_event_at as timestamp) as newest_event_at
from {{ ref('stg_raw__ingest_batches') }} as batches
left join spans on spans.batch_id = batches.batch_id
