-- Tier by tier pricing of graduated and volume charges (spec section 5); the tier breakdown
-- behind each usage line. Tier i covers (lower_bound, up_to]; up_to null is infinity.
--   graduated: each tier prices the part of q inside it, plus its flat fee once q enters it;
--   volume:    only the tier with lower_bound < q <= up_to applies, to the whole q.
-- q = 0 enters no tier (lower_bound of tier 1 is 0), so it prices to 0 in both models.
with

quantities as (
    select
        subscription_id,
        period_start,
        charge_index,
        plan_code,
        model,
        quantity
    from {{ ref('int_charge_quantities_aggregated') }}
    where model in ('graduated', 'volume')
),

tiers as (
    select * from {{ ref('stg_raw__charge_tiers') }}
),

placed as (
    select
        quantities.*,
        tiers.tier_index,
        tiers.lower_bound,
        tiers.up_to,
        tiers.unit_price,
        tiers.flat_fee,
        quantities.quantity > tiers.lower_bound as q_enters_tier,
        quantities.quantity > tiers.lower_bound
            and (tiers.up_to is null or quantities.quantity <= tiers.up_to) as q_ends_in_tier,
        -- the part of q inside (lower_bound, up_to]; bounds have at most 9 fraction digits (tested)
        cast(case
            when quantities.quantity <= tiers.lower_bound then 0
            when tiers.up_to is not null and quantities.quantity > tiers.up_to
                then cast(tiers.up_to as {{ qty_type() }}) - cast(tiers.lower_bound as {{ qty_type() }})
            else quantities.quantity - cast(tiers.lower_bound as {{ qty_type() }})
        end as {{ qty_type() }}) as units_in_tier
    from quantities
    inner join tiers
        on tiers.plan_code = quantities.plan_code
        and tiers.charge_index = quantities.charge_index
),

priced as (
    select
        placed.*,
        cast(case
            when model = 'graduated' then units_in_tier
            when q_ends_in_tier then quantity
            else 0
        end as {{ qty_type() }}) as billed_units,
        q_enters_tier and (model = 'graduated' or q_ends_in_tier) as flat_fee_applies
    from placed
)

select
    subscription_id,
    period_start,
    charge_index,
    plan_code,
    model,
    quantity,
    tier_index,
    lower_bound,
    up_to,
    unit_price,
    flat_fee,
    billed_units,
    flat_fee_applies,
    cast(
        cast(billed_units * unit_price as {{ exact_type() }})
        + cast(case when flat_fee_applies then flat_fee else 0 end as {{ exact_type() }})
    as {{ exact_type() }}) as amount_exact
from priced
