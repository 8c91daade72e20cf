-- Loaded catalog versions; is_current marks the newest, the one every staging model reads.
select
    catalog_version,
    loaded_at,
    content_sha256,
    source,
    catalog_version = {{ current_catalog_version() }} as is_current
from {{ source('raw', 'catalog_versions') }}
