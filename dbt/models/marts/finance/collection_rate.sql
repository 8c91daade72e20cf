-- Collection per issue month and currency: what was due on the invoices issued that month,
-- what Stripe collected on them, what was written off (uncollectible) and what is still open.
-- collection_rate = amount_paid / amount_due, exact to 12 decimals (computed in minor units:
-- no float), null when nothing was due.
with

due as (
    select
        {{ month_start('issued_on') }} as issue_month,
        currency,
        currency_exponent,
        amount_due,
        amount_paid,
        payment_status
    from {{ ref('payments') }}
    where amount_due > 0
),

monthly as (
    select
        issue_month,
        currency,
        currency_exponent,
        count(*) as invoices,
        sum(case when payment_status = 'paid' then 1 else 0 end) as invoices_paid,
        sum(amount_due) as amount_due,
        sum(amount_paid) as amount_paid,
        sum(case when payment_status = 'uncollectible' then amount_due - amount_paid else 0 end)
            as amount_uncollectible,
        sum(case when payment_status in ('open', 'pending', 'failed', 'requires_action')
                 then amount_due - amount_paid else 0 end) as amount_open
    from due
    group by issue_month, currency, currency_exponent
)

select
    cast(issue_month as date) as issue_month,
    cast(currency as varchar) as currency,
    cast(invoices as integer) as invoices,
    cast(invoices_paid as integer) as invoices_paid,
    cast(amount_due as {{ money_type() }}) as amount_due,
    cast(amount_paid as {{ money_type() }}) as amount_paid,
    cast(amount_uncollectible as {{ money_type() }}) as amount_uncollectible,
    cast(amount_open as {{ money_type() }}) as amount_open,
    cast(case
        when amount_due > 0 then {{ div_round_12(
            'cast(amount_paid * ' ~ pow10('currency_exponent') ~ ' as decimal(38, 0))',
            'cast(amount_due * ' ~ pow10('currency_exponent') ~ ' as decimal(38, 0))') }}
    end as {{ price_type() }}) as collection_rate
from monthly
