-- The exact amount of every charge in every period (spec section 5), and the line amount:
-- the exact amount rounded once to the currency's minor unit, half away from zero (section 7).
--   per_unit:  q * unit_price
--   graduated, volume: the sum of int_charge_tiers_priced
--   package:   ceil(max(0, q - free_units) / package_size) * package_price
-- q = 0 prices to 0 in every model.
-- A table: rated_usage, the commitments and invoice_lines all read it.
{{ config(materialized='table') }}
with

quantities as (
    select * from {{ ref('int_charge_quantities_aggregated') }}
),

tier_totals as (
    select
        subscription_id,
        period_start,
        charge_index,
        cast(sum(amount_exact) as {{ exact_type() }}) as amount_exact,
        count(case when billed_units > 0 or flat_fee_applies then 1 end) as tiers_used,
        max(case when billed_units > 0 or flat_fee_applies then tier_index end) as highest_tier_used
    from {{ ref('int_charge_tiers_priced') }}
    group by subscription_id, period_start, charge_index
),

packages as (
    select
        subscription_id,
        period_start,
        charge_index,
        case
            when model = 'package' and quantity > free_units
                then {{ ceil_div('quantity - free_units', 'package_size') }}
            when model = 'package' then cast(0 as decimal(38, 0))
        end as package_count
    from quantities
),

priced as (
    select
        quantities.*,
        tier_totals.tiers_used,
        tier_totals.highest_tier_used,
        packages.package_count,
        cast(case
            when quantities.quantity = 0 then 0
            when quantities.model = 'per_unit'
                then cast(quantities.quantity * quantities.unit_price as {{ exact_type() }})
            when quantities.model = 'package'
                then cast(packages.package_count * quantities.package_price as {{ exact_type() }})
            when quantities.model in ('graduated', 'volume')
                then cast(coalesce(tier_totals.amount_exact, 0) as {{ exact_type() }})
        end as {{ exact_type() }}) as amount_exact
    from quantities
    left join tier_totals
        on tier_totals.subscription_id = quantities.subscription_id
        and tier_totals.period_start = quantities.period_start
        and tier_totals.charge_index = quantities.charge_index
    left join packages
        on packages.subscription_id = quantities.subscription_id
        and packages.period_start = quantities.period_start
        and packages.charge_index = quantities.charge_index
)

select
    *,
    {{ round_money('amount_exact', 'currency_exponent') }} as amount
from priced
