-- Revenue retention and logo churn by monthly cohort, per currency (DECISIONLOG.md, "Revenue
-- definitions"). A customer's cohort is the first month with MRR > 0 in that currency
-- (customer_mrr). For each later month that has MRR in the currency:
--   nrr        = cohort's MRR in the month / cohort's MRR in its first month
--   grr        = sum over the cohort of least(MRR in the month, first-month MRR) / first-month MRR
--   logo_churn = customers with no MRR in the month / cohort customers
-- Ratios are exact to 12 decimals (integer division, macros/money.sql), null for an empty base.
with

active as (
    select month, customer_id, currency, mrr from {{ ref('customer_mrr') }} where mrr > 0
),

firsts as (
    select customer_id, currency, min(month) as cohort_month
    from active
    group by customer_id, currency
),

members as (
    select firsts.customer_id, firsts.currency, firsts.cohort_month, active.mrr as starting_mrr
    from firsts
    inner join active
        on active.customer_id = firsts.customer_id
        and active.currency = firsts.currency
        and active.month = firsts.cohort_month
),

months as (
    select distinct currency, month from active
),

grid as (
    select
        members.cohort_month,
        members.currency,
        months.month,
        members.customer_id,
        members.starting_mrr,
        cast(coalesce(active.mrr, 0) as {{ price_type() }}) as month_mrr
    from members
    inner join months
        on months.currency = members.currency and months.month >= members.cohort_month
    left join active
        on active.customer_id = members.customer_id
        and active.currency = members.currency
        and active.month = months.month
),

cohorts as (
    select
        cohort_month,
        currency,
        month,
        count(*) as cohort_customers,
        sum(case when month_mrr > 0 then 1 else 0 end) as active_customers,
        cast(sum(starting_mrr) as {{ price_type() }}) as starting_mrr,
        cast(sum(month_mrr) as {{ price_type() }}) as mrr,
        cast(sum(case when month_mrr < starting_mrr then month_mrr else starting_mrr end)
             as {{ price_type() }}) as retained_mrr
    from grid
    group by cohort_month, currency, month
)

select
    cast(cohort_month as date) as cohort_month,
    cast(currency as varchar) as currency,
    cast(month as date) as month,
    cast(({{ year_of('month') }} - {{ year_of('cohort_month') }}) * 12
         + {{ month_of('month') }} - {{ month_of('cohort_month') }} as integer) as months_since_start,
    cast(cohort_customers as integer) as cohort_customers,
    cast(active_customers as integer) as active_customers,
    cast(cohort_customers - active_customers as integer) as churned_customers,
    starting_mrr,
    mrr,
    retained_mrr,
    {{ div_round_12('cast(mrr * 1000000000000 as decimal(38, 0))',
                    'cast(starting_mrr * 1000000000000 as decimal(38, 0))') }} as nrr,
    {{ div_round_12('cast(retained_mrr * 1000000000000 as decimal(38, 0))',
                    'cast(starting_mrr * 1000000000000 as decimal(38, 0))') }} as grr,
    {{ div_round_12('cohort_customers - active_customers', 'cohort_customers') }} as logo_churn
from cohorts
