-- Monthly recurring revenue per customer, month and currency (DECISIONLOG.md, "Revenue
-- definitions"): the invoiced lines of each billing period, normalized to calendar months.
--   committed = fixed_fee + minimum_commitment lines; usage = usage lines;
--   adjustment lines (late usage on finalized invoices) count in the period they correct;
--   discount and tax lines are not recurring revenue;
--   a monthly period counts in the month it starts; a yearly period's lines count 1/12 in each
--   of the 12 months from its start (exact to 12 decimals, no float).
-- Only ended (invoiced) periods: MRR is what was billed, never a forecast.
with

lines as (
    select
        customer_id,
        currency,
        coalesce(corrected_invoice_id, invoice_id) as period_invoice_id,
        case when line_type = 'adjustment' then adjusted_line_type else line_type end
            as revenue_type,
        amount
    from {{ ref('invoice_lines') }}
    where (case when line_type = 'adjustment' then adjusted_line_type else line_type end)
        in ('fixed_fee', 'minimum_commitment', 'usage')
),

periods as (
    select
        invoice_id,
        period_start,
        case billing_interval when 'year' then 12 else 1 end as months_per_period,
        currency_exponent
    from {{ ref('subscription_periods') }}
),

per_period as (
    select
        lines.customer_id,
        lines.currency,
        periods.currency_exponent,
        periods.period_start,
        periods.months_per_period,
        cast(sum(case when lines.revenue_type = 'usage' then 0 else lines.amount end)
             as {{ money_type() }}) as committed_amount,
        cast(sum(case when lines.revenue_type = 'usage' then lines.amount else 0 end)
             as {{ money_type() }}) as usage_amount
    from lines
    inner join periods on periods.invoice_id = lines.period_invoice_id
    group by 1, 2, 3, 4, 5
),

spread as (
    select
        {{ month_start(add_months('per_period.period_start', 'k.n')) }} as month,
        per_period.customer_id,
        per_period.currency,
        per_period.currency_exponent,
        -- both branches cast to one scale first: a CASE over decimal(38,4) and decimal(38,12)
        -- would round to 4 places (DECISIONLOG.md, "Money")
        case when per_period.months_per_period = 1
             then cast(per_period.committed_amount as {{ price_type() }})
             else cast({{ div_round_12('per_period.committed_amount', 12) }} as {{ price_type() }})
        end as committed_mrr,
        case when per_period.months_per_period = 1
             then cast(per_period.usage_amount as {{ price_type() }})
             else cast({{ div_round_12('per_period.usage_amount', 12) }} as {{ price_type() }})
        end as usage_mrr
    from per_period
    {{ lateral_series('per_period.months_per_period - 1', 'k', 'n') }}
)

select
    cast(month as date) as month,
    cast(customer_id as varchar) as customer_id,
    cast(currency as varchar) as currency,
    cast(currency_exponent as integer) as currency_exponent,
    cast(sum(committed_mrr) as {{ price_type() }}) as committed_mrr,
    cast(sum(usage_mrr) as {{ price_type() }}) as usage_mrr,
    cast(sum(committed_mrr) + sum(usage_mrr) as {{ price_type() }}) as mrr
from spread
group by month, customer_id, currency, currency_exponent
