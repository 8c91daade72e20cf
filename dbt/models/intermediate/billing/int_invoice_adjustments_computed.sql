-- Late usage on finalized invoices (dbt/docs/contract.md section 8), billed as adjustments.
--
-- A finalized invoice never changes. For each one, its lines are computed again from everything
-- landed now (int_invoice_lines_computed, the "restated" invoice) and compared line by line
-- (same line_order and charge) with the frozen lines. What the restated invoice says beyond the
-- frozen one, less the adjustments already issued for it on later finalized invoices, is still
-- owed (or to be credited): one adjustment per changed line, usage lines with their change in q.
-- Rounded lines minus rounded lines: adjustments are exact in the currency's minor unit.
--
-- Where it is billed (dbt/DECISIONLOG.md, "Adjustments"): the subscription's earliest invoice
-- that is not finalized yet and starts on or after the corrected period's end; when the
-- subscription has no later period at all (it ended, e.g. a plan change), the customer's
-- earliest such invoice in the same currency. Until that invoice exists the adjustment waits
-- (target_invoice_id is null; mart pending_adjustments).
with

finalized as (
    select * from {{ ref('stg_billing__finalized_invoices') }}
),

frozen as (
    select invoice_id, line_order, line_type, charge_index, metric, quantity, amount
    from {{ ref('stg_billing__finalized_invoice_lines') }}
    where line_type <> 'adjustment'
),

restated as (
    select invoice_id, line_order, line_type, charge_index, metric, quantity, amount
    from {{ ref('int_invoice_lines_computed') }}
    where invoice_id in (select invoice_id from finalized)
),

issued as (
    -- adjustments for a finalized invoice already billed on later finalized invoices
    select
        corrected_invoice_id as invoice_id,
        adjusted_line_order as line_order,
        adjusted_line_type as line_type,
        charge_index,
        max(metric) as metric,
        sum(quantity) as quantity,
        sum(amount) as amount
    from {{ ref('stg_billing__finalized_invoice_lines') }}
    where line_type = 'adjustment'
    group by corrected_invoice_id, adjusted_line_order, adjusted_line_type, charge_index
),

line_keys as (
    select invoice_id, line_order, line_type, coalesce(charge_index, 0) as charge_key from restated
    union
    select invoice_id, line_order, line_type, coalesce(charge_index, 0) from frozen
    union
    select invoice_id, line_order, line_type, coalesce(charge_index, 0) from issued
),

deltas as (
    select
        line_keys.invoice_id,
        line_keys.line_order,
        line_keys.line_type,
        case when line_keys.line_type = 'usage' then line_keys.charge_key end as charge_index,
        coalesce(restated.metric, frozen.metric, issued.metric) as metric,
        case when line_keys.line_type = 'usage' then cast(
            coalesce(restated.quantity, 0) - coalesce(frozen.quantity, 0)
            - coalesce(issued.quantity, 0)
        as {{ qty_type() }}) end as quantity,
        cast(
            coalesce(restated.amount, 0) - coalesce(frozen.amount, 0) - coalesce(issued.amount, 0)
        as {{ money_type() }}) as amount
    from line_keys
    left join restated
        on restated.invoice_id = line_keys.invoice_id
        and restated.line_order = line_keys.line_order
        and coalesce(restated.charge_index, 0) = line_keys.charge_key
    left join frozen
        on frozen.invoice_id = line_keys.invoice_id
        and frozen.line_order = line_keys.line_order
        and coalesce(frozen.charge_index, 0) = line_keys.charge_key
    left join issued
        on issued.invoice_id = line_keys.invoice_id
        and issued.line_order = line_keys.line_order
        and coalesce(issued.charge_index, 0) = line_keys.charge_key
),

adjustments as (
    select
        deltas.*,
        finalized.subscription_id,
        finalized.customer_id,
        finalized.currency,
        finalized.currency_exponent,
        finalized.period_start as corrected_period_start,
        finalized.period_end as corrected_period_end
    from deltas
    inner join finalized on finalized.invoice_id = deltas.invoice_id
    where deltas.amount <> 0
),

periods as (
    select
        {{ invoice_id('subscription_id', 'period_start') }} as invoice_id,
        subscription_id, customer_id, plan_code, period_start, period_end, invoice_status,
        currency, is_ended
    from {{ ref('int_invoice_totals_computed') }}
),

continued as (
    -- corrected invoices whose subscription has a later period (ended or still open)
    select distinct adjustments.invoice_id
    from adjustments
    inner join periods
        on periods.subscription_id = adjustments.subscription_id
        and periods.period_start >= adjustments.corrected_period_end
),

targets as (
    select
        adjustments.invoice_id as corrected_invoice_id,
        adjustments.line_order,
        adjustments.charge_index,
        periods.invoice_id as target_invoice_id,
        row_number() over (
            partition by adjustments.invoice_id, adjustments.line_order, adjustments.charge_index
            order by periods.period_start, {{ collate_c('periods.subscription_id') }}
        ) as preference
    from adjustments
    left join continued on continued.invoice_id = adjustments.invoice_id
    inner join periods
        on periods.is_ended
        and periods.invoice_id not in (select invoice_id from finalized)
        and periods.period_start >= adjustments.corrected_period_end
        and periods.currency = adjustments.currency
        and (
            (continued.invoice_id is not null and periods.subscription_id = adjustments.subscription_id)
            or (continued.invoice_id is null and periods.customer_id = adjustments.customer_id)
        )
)

select
    adjustments.invoice_id as corrected_invoice_id,
    adjustments.subscription_id as corrected_subscription_id,
    adjustments.corrected_period_start,
    adjustments.corrected_period_end,
    adjustments.line_type as adjusted_line_type,
    adjustments.line_order as adjusted_line_order,
    adjustments.charge_index,
    adjustments.metric,
    adjustments.quantity,
    adjustments.amount,
    adjustments.currency,
    adjustments.currency_exponent,
    periods.invoice_id as target_invoice_id,
    coalesce(periods.subscription_id, adjustments.subscription_id) as subscription_id,
    adjustments.customer_id,
    periods.plan_code,
    periods.period_start,
    periods.period_end,
    periods.invoice_status
from adjustments
left join targets
    on targets.corrected_invoice_id = adjustments.invoice_id
    and targets.line_order = adjustments.line_order
    and coalesce(targets.charge_index, 0) = coalesce(adjustments.charge_index, 0)
    and targets.preference = 1
left join periods on periods.invoice_id = targets.target_invoice_id
