-- Subscriptions of the current catalog. Active on the dates start_date <= d < end_date.
select
    subscription_id,
    customer_id,
    plan_code,
    start_date,
    end_date,          -- exclusive; null = open-ended
    billing_anchor     -- calendar | anniversary
from {{ source('raw', 'catalog_subscriptions') }}
where catalog_version = {{ current_catalog_version() }}
