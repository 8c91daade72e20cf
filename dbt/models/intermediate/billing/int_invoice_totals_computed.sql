-- Subtotal, discount, tax and total of every invoice (one per subscription and period),
-- spec section 7. Sums are sums of rounded lines; discount and tax are each rounded once.
--   subtotal = fixed fee + usage lines + minimum commitment top-up
--   discount = min(subtotal, sum over discounts whose [start, end) contains the period start
--                  of subtotal * percent_off / 100 or amount_off), rounded once
--   tax      = (subtotal - rounded discount) * tax_rate, rounded (only with a tax_rate)
with

commitments as (
    select * from {{ ref('int_period_commitments_prorated') }}
),

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

discounts as (
    select * from {{ ref('stg_raw__customer_discounts') }}
),

subtotals as (
    select
        commitments.*,
        cast(
            coalesce(fixed_fee_amount, 0) + usage_amount + coalesce(minimum_topup_amount, 0)
        as {{ money_type() }}) as subtotal
    from commitments
),

discount_totals as (
    -- the window is tested against the billing period's start, not the subscription's start
    select
        subtotals.subscription_id,
        subtotals.period_start,
        count(*) as discounts_applied,
        cast(sum(
            cast(coalesce(subtotals.subtotal * discounts.percent_off * 0.01, 0) as {{ exact_type() }})
            + cast(coalesce(discounts.amount_off, 0) as {{ exact_type() }})
        ) as {{ exact_type() }}) as discount_uncapped
    from subtotals
    inner join discounts
        on discounts.customer_id = subtotals.customer_id
        and (discounts.start_date is null or discounts.start_date <= subtotals.period_start)
        and (discounts.end_date is null or subtotals.period_start < discounts.end_date)
    group by subtotals.subscription_id, subtotals.period_start
),

discounted as (
    select
        subtotals.*,
        coalesce(discount_totals.discounts_applied, 0) as discounts_applied,
        -- several discounts add up exactly, are capped at the subtotal, then rounded once
        -- (a subtotal below zero, possible only with negative usage values, gets no discount)
        cast(case
            when discount_totals.discount_uncapped is null or subtotals.subtotal <= 0 then 0
            when discount_totals.discount_uncapped > cast(subtotals.subtotal as {{ exact_type() }})
                then cast(subtotals.subtotal as {{ exact_type() }})
            else discount_totals.discount_uncapped
        end as {{ exact_type() }}) as discount_exact
    from subtotals
    left join discount_totals
        on discount_totals.subscription_id = subtotals.subscription_id
        and discount_totals.period_start = subtotals.period_start
),

rounded as (
    select
        discounted.*,
        {{ round_money('discounted.discount_exact', 'discounted.currency_exponent') }} as discount_amount,
        customers.tax_rate
    from discounted
    left join customers
        on customers.customer_id = discounted.customer_id
),

taxed as (
    select
        rounded.*,
        -- tax is on what the customer pays: the subtotal less the discount as invoiced (rounded)
        cast(case when tax_rate is not null then
            cast(cast(subtotal - discount_amount as {{ money_type() }}) * tax_rate as {{ exact_type() }})
        end as {{ exact_type() }}) as tax_exact
    from rounded
)

select
    *,
    cast(case when tax_rate is not null then
        {{ round_money('tax_exact', 'currency_exponent') }}
    end as {{ money_type() }}) as tax_amount,
    cast(
        subtotal - discount_amount
        + coalesce({{ round_money('tax_exact', 'currency_exponent') }}, 0)
    as {{ money_type() }}) as total
from taxed
