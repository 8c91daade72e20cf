-- Property filters of charges: an event counts toward the charge only if, for every row here,
-- its property's text form equals property_value (numbers as plain decimals, booleans true/false).
select
    plan_code,
    charge_index,
    property_name,
    property_value
from {{ source('raw', 'catalog_charge_filters') }}
where catalog_version = {{ current_catalog_version() }}
