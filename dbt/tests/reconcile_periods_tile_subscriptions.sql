-- A subscription's periods follow each other without gap or overlap: each period starts
-- where the previous one ended.
with ordered as (
    select
        subscription_id,
        period_number,
        period_start,
        lag(period_end) over (partition by subscription_id order by period_start) as previous_end
    from {{ ref('subscription_periods') }}
)
select *
from ordered
where previous_end is not null and previous_end <> period_start
