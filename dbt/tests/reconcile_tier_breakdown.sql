-- Graduated and volume lines are exactly the sum of their tiers.
with tier_sums as (
    select line_id, sum(amount_exact) as tiers_exact
    from {{ ref('rated_usage_tiers') }}
    group by line_id
)
select rated.line_id, rated.amount_exact, tier_sums.tiers_exact
from {{ ref('rated_usage') }} as rated
left join tier_sums on tier_sums.line_id = rated.line_id
where rated.model in ('graduated', 'volume')
  and rated.quantity > 0
  and (tier_sums.line_id is null or rated.amount_exact <> tier_sums.tiers_exact)
