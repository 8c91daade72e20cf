-- Customer discounts. A discount applies to a period whose start lies in [start_date, end_date);
-- a null bound is open.
select
    customer_id,
    discount_index,
    cast(percent_off as {{ price_type() }}) as percent_off,
    cast(amount_off as {{ price_type() }}) as amount_off,
    start_date,
    end_date
from {{ source('raw', 'catalog_discounts') }}
where catalog_version = {{ current_catalog_version() }}
