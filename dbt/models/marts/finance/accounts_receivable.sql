-- Open balance per issued invoice that is still owed, with its age (dbt/DECISIONLOG.md,
-- "Payments and dunning"): days from the day the invoice was issued (finalized_as_of: payment
-- is due on issue, the collector charges at once) to the build's as_of, bucketed 0-30, 31-60,
-- 61-90 and 90+. Paid, uncollectible (written off) and nothing-due invoices are not
-- receivables.
with

owed as (
    select *
    from {{ ref('payments') }}
    where payment_status in ('open', 'pending', 'failed', 'requires_action')
      and amount_due > amount_paid
),

aged as (
    select
        owed.*,
        greatest({{ days_between('owed.issued_on', as_of_date()) }}, 0) as days_outstanding
    from owed
)

select
    cast(invoice_id as varchar) as invoice_id,
    cast(invoice_number as varchar) as invoice_number,
    cast(customer_id as varchar) as customer_id,
    cast(currency as varchar) as currency,
    cast(issued_on as date) as issued_on,
    cast(payment_status as varchar) as payment_status,
    cast(amount_due as {{ money_type() }}) as amount_due,
    cast(amount_paid as {{ money_type() }}) as amount_paid,
    cast(amount_due - amount_paid as {{ money_type() }}) as open_balance,
    cast(days_outstanding as integer) as days_outstanding,
    cast(
        case
            when days_outstanding <= 30 then '0-30'
            when days_outstanding <= 60 then '31-60'
            when days_outstanding <= 90 then '61-90'
            else '90+'
        end
    as varchar) as aging_bucket,
    {{ as_of_date() }} as as_of
from aged
