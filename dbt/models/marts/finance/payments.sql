-- One row per finalized (issued) invoice: what is due, what Stripe collected, and the payment
-- status derived from the attempts (dbt/DECISIONLOG.md, "Payments and dunning").
-- amount_due: the invoice total when it is above zero, else 0 (nothing to collect; the
-- signed total stays in invoice_total). amount_paid: what Stripe reported as received,
-- converted exactly from minor units with the currency's exponent.
with

invoices as (
    select * from {{ ref('invoices') }} where status = 'finalized'
),

issued as (
    select invoice_id, finalized_as_of from {{ ref('stg_billing__finalized_invoices') }}
),

paid as (
    select * from {{ ref('stg_billing__invoice_payment_status') }}
)

select
    cast(invoices.invoice_id as varchar) as invoice_id,
    cast(invoices.invoice_number as varchar) as invoice_number,
    cast(invoices.customer_id as varchar) as customer_id,
    cast(invoices.subscription_id as varchar) as subscription_id,
    cast(invoices.period_start as date) as period_start,
    cast(invoices.period_end as date) as period_end,
    cast(issued.finalized_as_of as date) as issued_on,
    cast(invoices.currency as varchar) as currency,
    cast(invoices.currency_exponent as integer) as currency_exponent,
    cast(invoices.total as {{ money_type() }}) as invoice_total,
    cast(case when invoices.total > 0 then invoices.total else 0 end as {{ money_type() }})
        as amount_due,
    cast(
        cast(coalesce(paid.amount_paid_minor, 0) as decimal(38, 0))
        * {{ minor_unit('invoices.currency_exponent') }}
    as {{ money_type() }}) as amount_paid,
    cast(
        case
            when invoices.total <= 0 then 'nothing_due'
            else coalesce(paid.payment_status, 'open')
        end
    as varchar) as payment_status,
    cast(coalesce(paid.attempts, 0) as integer) as attempts,
    cast(paid.last_attempt_at as timestamp) as last_attempt_at,
    cast(paid.paid_at as timestamp) as paid_at,
    cast(paid.uncollectible_at as timestamp) as uncollectible_at
from invoices
left join issued on issued.invoice_id = invoices.invoice_id
left join paid on paid.invoice_id = invoices.invoice_id
