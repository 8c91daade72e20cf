-- MRR and ARR per month and currency (DECISIONLOG.md, "Revenue definitions"), split into
-- committed (fixed fees, minimum top-ups) and usage run-rate. ARR = 12 x MRR. Never summed
-- across currencies: (month, currency) is the key.
select
    cast(month as date) as month,
    cast(currency as varchar) as currency,
    cast(currency_exponent as integer) as currency_exponent,
    cast(sum(case when mrr > 0 then 1 else 0 end) as integer) as paying_customers,
    cast(sum(committed_mrr) as {{ price_type() }}) as committed_mrr,
    cast(sum(usage_mrr) as {{ price_type() }}) as usage_mrr,
    cast(sum(mrr) as {{ price_type() }}) as mrr,
    cast(12 * sum(committed_mrr) as {{ price_type() }}) as committed_arr,
    cast(12 * sum(usage_mrr) as {{ price_type() }}) as usage_arr,
    cast(12 * sum(mrr) as {{ price_type() }}) as arr
from {{ ref('customer_mrr') }}
group by month, currency, currency_exponent
