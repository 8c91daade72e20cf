{{ config(tags=['catalog']) }}
-- An event belongs to the one subscription of its customer active on its date: two
-- subscriptions of a customer that overlap would bill it twice (the catalog loader refuses
-- them; this guards the models' assumption).
select a.customer_id, a.subscription_id, b.subscription_id as overlapping_subscription_id
from {{ ref('stg_raw__subscriptions') }} as a
inner join {{ ref('stg_raw__subscriptions') }} as b
    on b.customer_id = a.customer_id
    and b.subscription_id > a.subscription_id
    and b.start_date < coalesce(a.end_date, cast('9999-12-31' as date))
    and a.start_date < coalesce(b.end_date, cast('9999-12-31' as date))
