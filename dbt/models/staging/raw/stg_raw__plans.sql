-- Plans of the current catalog.
select
    plan_code,
    currency,
    billing_interval,                                                   -- month | year
    cast(fixed_fee as {{ price_type() }}) as fixed_fee,                 -- null: no fixed_fee line
    cast(minimum_commitment as {{ price_type() }}) as minimum_commitment
from {{ source('raw', 'catalog_plans') }}
where catalog_version = {{ current_catalog_version() }}
