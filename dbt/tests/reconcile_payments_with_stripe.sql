-- Reconciliation of the payments mart with what Stripe said (billing.payment_attempts keeps
-- Stripe's amount_received for every succeeded PaymentIntent). Fails with one row per invoice
-- where: amount_paid differs from the sum Stripe reported received; more was paid than due;
-- a paid invoice is not paid in full; Stripe received a different amount than was asked; or
-- an invoice has more than one succeeded PaymentIntent (a double charge).
with

succeeded as (
    select distinct invoice_id, attempt_id, amount_minor, amount_received_minor
    from {{ ref('stg_billing__payment_attempts') }}
    where status = 'succeeded'
),

stripe_said as (
    select
        invoice_id,
        sum(amount_received_minor) as received_minor,
        sum(case when amount_received_minor <> amount_minor then 1 else 0 end) as short_or_over,
        count(*) as succeeded_attempts
    from succeeded
    group by invoice_id
),

compared as (
    select
        p.invoice_id,
        p.payment_status,
        p.amount_due,
        p.amount_paid,
        cast(
            cast(coalesce(s.received_minor, 0) as decimal(38, 0))
            * {{ minor_unit('p.currency_exponent') }}
        as {{ money_type() }}) as stripe_received,
        coalesce(s.short_or_over, 0) as short_or_over,
        coalesce(s.succeeded_attempts, 0) as succeeded_attempts
    from {{ ref('payments') }} as p
    left join stripe_said as s on s.invoice_id = p.invoice_id
)

select *
from compared
where amount_paid <> stripe_received
   or amount_paid > amount_due
   or (payment_status = 'paid' and amount_paid <> amount_due)
   or short_or_over > 0
   or succeeded_attempts > 1
