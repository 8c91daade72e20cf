-- Metrics of the current catalog: how each metric aggregates, and over which field.
select
    metric_code,
    aggregation,          -- count | sum | max | unique_count | latest
    field,                -- 'quantity' or 'properties.<name>'
    property_name         -- <name> when the field is a property, else null
from {{ source('raw', 'catalog_metrics') }}
where catalog_version = {{ current_catalog_version() }}
