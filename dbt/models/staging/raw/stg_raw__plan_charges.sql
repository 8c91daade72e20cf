-- Charges of the current catalog, one per (plan, charge_index); charge_index is the plan's
-- order of charges, which is also the order of the usage lines on the invoice.
select
    catalog_version,
    plan_code,
    charge_index,
    metric_code,
    model,                                                   -- per_unit | graduated | volume | package
    cast(unit_price as {{ price_type() }}) as unit_price,
    cast(package_size as {{ price_type() }}) as package_size,
    cast(package_price as {{ price_type() }}) as package_price,
    cast(coalesce(free_units, 0) as {{ price_type() }}) as free_units,
    filter_count
from {{ source('raw', 'catalog_charges') }}
where catalog_version = {{ current_catalog_version() }}
