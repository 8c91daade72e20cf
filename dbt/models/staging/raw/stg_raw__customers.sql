-- Customers of the current catalog.
select
    customer_id,
    currency,
    cast(tax_rate as {{ price_type() }}) as tax_rate   -- null: no tax line
from {{ source('raw', 'catalog_customers') }}
where catalog_version = {{ current_catalog_version() }}
