-- Open balance per customer and currency (amounts in different currencies are never added),
-- split into the aging buckets of accounts_receivable.
{% set buckets = [('0-30', 'open_0_30'), ('31-60', 'open_31_60'), ('61-90', 'open_61_90'),
                  ('90+', 'open_over_90')] %}
select
    cast(customer_id as varchar) as customer_id,
    cast(currency as varchar) as currency,
    cast(count(*) as integer) as open_invoices,
    cast(sum(open_balance) as {{ money_type() }}) as open_balance,
    {%- for bucket, column in buckets %}
    cast(sum(case when aging_bucket = '{{ bucket }}' then open_balance else 0 end)
        as {{ money_type() }}) as {{ column }},
    {%- endfor %}
    cast(max(days_outstanding) as integer) as oldest_days_outstanding
from {{ ref('accounts_receivable') }}
group by customer_id, currency
