-- The distinct values a unique_count charge has seen in each period (spec section 4): one row
-- per (subscription, period, charge, value text). What makes unique_count incremental: a build
-- adds only the values of newly rated events that the period has not seen yet, and
-- int_charge_event_totals_aggregated counts this table's rows for the periods it touches.
--
-- Incremental (DECISIONLOG.md, "Incremental build"):
--   * new = rows of int_usage_events_rated with a rating_run above the newest this table has
--     read (rated_through); adding a value that is already here is skipped, so reading a row
--     twice is harmless;
--   * when the rated rows this table was built from are gone (a new catalog re-rates every
--     event, or a full refresh of the rating), the pre_hook empties it and it is rebuilt from
--     every rated row: rating_generation is the smallest rating_run of the rated table, which
--     only changes when rows are re-rated.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}{{ delete_stale_aggregates(this) }}{% endif %}"
) }}
with

rated as (
    select * from {{ ref('int_usage_events_rated') }}
    where aggregation = 'unique_count'
      and field_status = 'read'
    {% if is_incremental() %}
      and rating_run > {{ aggregate_high_water_mark(this) }}
    {% endif %}
),

new_values as (
    select distinct
        subscription_id,
        period_start,
        charge_index,
        value_text
    from rated
)

select
    new_values.subscription_id,
    new_values.period_start,
    new_values.charge_index,
    new_values.value_text,
    {{ aggregate_state_columns() }}
from new_values
{% if is_incremental() %}
where not exists (
    select 1
    from {{ this }} as seen
    where seen.subscription_id = new_values.subscription_id
      and seen.period_start = new_values.period_start
      and seen.charge_index = new_values.charge_index
      and seen.value_text = new_values.value_text
)
{% endif %}
