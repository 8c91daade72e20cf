-- Tiers of graduated and volume charges. Tier i covers (lower_bound, up_to]; up_to null = infinity.
select
    plan_code,
    charge_index,
    tier_index,
    cast(lower_bound as {{ price_type() }}) as lower_bound,
    cast(up_to as {{ price_type() }}) as up_to,
    cast(unit_price as {{ price_type() }}) as unit_price,
    cast(flat_fee as {{ price_type() }}) as flat_fee
from {{ source('raw', 'catalog_charge_tiers') }}
where catalog_version = {{ current_catalog_version() }}
