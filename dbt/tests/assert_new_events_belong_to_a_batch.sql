-- Every landed event belongs to a landing batch of raw.ingest_batches, with the batch's
-- landed_at (the landing side writes both in one transaction; rating reads new events by batch
-- and by that time). Scoped to the events landed since the last verified build
-- (DECISIONLOG.md, "Scoped tests").
-- depends_on: {{ ref('int_usage_events_rated') }}
select events.event_id, events.batch_id, events.landed_at, batches.landed_at as batch_landed_at
from {{ ref('stg_raw__events') }} as events
left join {{ ref('stg_raw__ingest_batches') }} as batches
    on batches.batch_id = events.batch_id
where {{ unverified_events_condition('events.landed_at') }}
  and (batches.batch_id is null or batches.landed_at <> events.landed_at)
