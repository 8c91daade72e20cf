{{ config(tags=['catalog']) }}
-- The loader writes each charge's filter_count next to its filter rows; the models count the
-- rows themselves, so a disagreement means a half-written catalog.
with filter_rows as (
    select plan_code, charge_index, count(*) as filter_rows
    from {{ ref('stg_raw__charge_filters') }}
    group by plan_code, charge_index
)
select charges.plan_code, charges.charge_index, charges.filter_count, filter_rows.filter_rows
from {{ ref('stg_raw__plan_charges') }} as charges
left join filter_rows
    on filter_rows.plan_code = charges.plan_code
    and filter_rows.charge_index = charges.charge_index
where charges.filter_count <> coalesce(filter_rows.filter_rows, 0)
