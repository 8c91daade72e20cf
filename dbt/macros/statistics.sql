{#- PostgreSQL plans the event-sized joins from table statistics. The catalog tables are
    rewritten by every `catalog load` and are too small for autovacuum to analyze them soon,
    and without statistics the planner guesses a couple of rows per catalog table and picks
    nested loops that rescan every event once per charge (minutes instead of seconds at 1M
    events). Analyzing them is a few milliseconds, so every run starts with it. DuckDB keeps
    its own statistics up to date: nothing to do. -#}
{% macro refresh_raw_statistics() %}
  {{ return(adapter.dispatch('refresh_raw_statistics', 'valueverse')()) }}
{% endmacro %}

{% macro default__refresh_raw_statistics() %}
  select 1
{% endmacro %}

{% macro postgres__refresh_raw_statistics() %}
  {%- set tables = ['catalog_versions', 'catalog_metrics', 'catalog_plans', 'catalog_charges',
                    'catalog_charge_tiers', 'catalog_charge_filters', 'catalog_customers',
                    'catalog_discounts', 'catalog_subscriptions', 'ingest_batches'] -%}
  analyze {% for table in tables %}{{ source('raw', table) }}{{ ", " if not loop.last }}{% endfor %}
{% endmacro %}
