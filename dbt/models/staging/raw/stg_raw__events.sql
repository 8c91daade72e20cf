-- Accepted usage events (the landing side already validated and deduplicated them).
-- properties_text / properties_num are JSON maps pre-rendered by Python so that both
-- warehouses see the same text for every value (see ingestion/landing/raw_ddl.py).
select
    event_id,
    customer_id,
    metric as metric_code,
    event_ts,                                        -- naive UTC
    cast(event_ts as date) as event_date,            -- the UTC date that picks subscription and period
    cast(quantity as {{ qty_type() }}) as quantity,
    properties_text,
    properties_num,
    batch_id,
    landed_at
from {{ source('raw', 'events') }}
