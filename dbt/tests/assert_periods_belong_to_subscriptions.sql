-- Every billing period belongs to a subscription of the current catalog (a relationships test
-- written out: as a generic test it would carry the catalog tag of stg_raw__subscriptions and
-- be skipped with the catalog tests, but it reads the periods, which change with as_of and
-- the events; see "Skipped nodes" in DECISIONLOG.md).
select periods.subscription_id, periods.period_start
from {{ ref('subscription_periods') }} as periods
left join {{ ref('stg_raw__subscriptions') }} as subscriptions
    on subscriptions.subscription_id = periods.subscription_id
where subscriptions.subscription_id is null
