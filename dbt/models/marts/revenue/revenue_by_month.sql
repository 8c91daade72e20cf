-- Invoiced per month and currency (DECISIONLOG.md, "Revenue definitions"): the invoices of the
-- periods that started in the month (marts.invoices totals, as issued when finalized). What was
-- collected comes from marts.payments, read beside it by the dashboards when payments exist.
select
    cast({{ month_start('period_start') }} as date) as month,
    cast(currency as varchar) as currency,
    cast(currency_exponent as integer) as currency_exponent,
    cast(count(*) as integer) as invoices,
    cast(sum(case when status = 'finalized' then 1 else 0 end) as integer) as finalized_invoices,
    cast(count(distinct customer_id) as integer) as customers,
    cast(sum(subtotal) as {{ money_type() }}) as subtotal,
    cast(sum(discount_amount) as {{ money_type() }}) as discount_amount,
    cast(sum(coalesce(tax_amount, 0)) as {{ money_type() }}) as tax_amount,
    cast(sum(adjustment_amount) as {{ money_type() }}) as adjustment_amount,
    cast(sum(total) as {{ money_type() }}) as invoiced_total
from {{ ref('invoices') }}
group by {{ month_start('period_start') }}, currency, currency_exponent
