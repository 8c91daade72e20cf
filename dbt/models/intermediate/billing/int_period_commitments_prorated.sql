-- Fixed fee and minimum commitment of every period (spec section 6), both prorated by days:
--   fixed_fee line          = round(fixed_fee * active_days / days_in_period)
--   minimum_commitment line = round(minimum * active_days / days_in_period - (fixed fee line
--                                   + usage lines)), only when positive
-- The difference is taken between the exact prorated minimum and the already rounded lines,
-- then rounded once (DECISIONLOG.md). Divisions are exact integer arithmetic (macros/money.sql).
with

periods as (
    select * from {{ ref('int_subscription_periods_generated') }}
),

usage_totals as (
    select
        subscription_id,
        period_start,
        cast(sum(amount) as {{ money_type() }}) as usage_amount
    from {{ ref('int_charge_amounts_priced') }}
    group by subscription_id, period_start
),

fixed_fees as (
    select
        periods.*,
        cast(coalesce(usage_totals.usage_amount, 0) as {{ money_type() }}) as usage_amount,
        cast(case when periods.fixed_fee is not null then
            {{ div_round_12('periods.fixed_fee * periods.active_days', 'periods.days_in_period') }}
        end as {{ price_type() }}) as fixed_fee_exact,
        cast(case when periods.fixed_fee is not null then
            {{ div_round_money('periods.fixed_fee * periods.active_days', 'periods.days_in_period',
                               'periods.currency_exponent') }}
        end as {{ money_type() }}) as fixed_fee_amount
    from periods
    left join usage_totals
        on usage_totals.subscription_id = periods.subscription_id
        and usage_totals.period_start = periods.period_start
),

minimums as (
    select
        fixed_fees.*,
        cast(coalesce(fixed_fee_amount, 0) + usage_amount as {{ money_type() }}) as committed_amount,
        cast(case when minimum_commitment is not null then
            {{ div_round_12('minimum_commitment * active_days', 'days_in_period') }}
        end as {{ price_type() }}) as minimum_prorated_exact,
        -- (minimum * active_days - committed * days_in_period) / days_in_period, if positive;
        -- both products are cast to one scale so the subtraction is exact
        cast(case when minimum_commitment is not null then
            cast(minimum_commitment * active_days as {{ price_type() }})
            - cast(cast(coalesce(fixed_fee_amount, 0) + usage_amount as {{ money_type() }})
                   * days_in_period as {{ price_type() }})
        end as {{ price_type() }}) as shortfall_times_days
    from fixed_fees
)

select
    subscription_id,
    customer_id,
    plan_code,
    period_start,
    period_end,
    is_ended,
    invoice_status,
    active_days,
    days_in_period,
    currency,
    currency_exponent,
    fixed_fee,
    fixed_fee_exact,
    fixed_fee_amount,
    usage_amount,
    minimum_commitment,
    minimum_prorated_exact,
    committed_amount,
    cast(case when shortfall_times_days > 0 then
        {{ div_round_12('shortfall_times_days', 'days_in_period') }}
    end as {{ price_type() }}) as minimum_topup_exact,
    cast(case when shortfall_times_days > 0 then
        {{ div_round_money('shortfall_times_days', 'days_in_period', 'currency_exponent') }}
    end as {{ money_type() }}) as minimum_topup_amount
from minimums
