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

{#- PostgreSQL: summarize the block ranges of raw.events that BRIN indexes have not summarized
    yet (rows landed since the last summary). Until a range is summarized a BRIN scan must read
    it, so "events landed since" would read every event the sink wrote since its index was
    created (it is created on the empty table). Reads only the new pages; DuckDB: nothing. -#}
{% macro summarize_event_brin_ranges() %}
  {{ return(adapter.dispatch('summarize_event_brin_ranges', 'valueverse')()) }}
{% endmacro %}

{% macro default__summarize_event_brin_ranges() %}
  select 1
{% endmacro %}

{% macro postgres__summarize_event_brin_ranges() %}
  select brin_summarize_new_values(indexes.indexrelid::regclass)
  from pg_index as indexes
  inner join pg_class as index_class on index_class.oid = indexes.indexrelid
  inner join pg_am as access_method on access_method.oid = index_class.relam
  inner join pg_class as table_class on table_class.oid = indexes.indrelid
  inner join pg_namespace as namespaces on namespaces.oid = table_class.relnamespace
  where access_method.amname = 'brin'
    and index_class.relkind = 'i'
    and namespaces.nspname = 'raw'
    and table_class.relname like 'events%'
{% endmacro %}

{#- PostgreSQL, for the incremental rating: its inputs are a few new events, estimated from
    statistics that end before them (a landed_at past the histogram is "about one row"), which
    makes the planner pick nested loops that compare each new event with every subscription
    and period (seconds for 10k events). Hash joins are right at every size here. -#}
{% macro rating_session_settings() %}
  {{ return(adapter.dispatch('rating_session_settings', 'valueverse')()) }}
{% endmacro %}

{% macro default__rating_session_settings() %}
  select 1
{% endmacro %}

{% macro postgres__rating_session_settings() %}
  set local enable_nestloop = off
{% endmacro %}

{% macro postgres__refresh_raw_statistics() %}
  {%- set tables = ['catalog_versions', 'catalog_metrics', 'catalog_plans', 'catalog_charges',
                    'catalog_charge_tiers', 'catalog_charge_filters', 'catalog_customers',
                    'catalog_discounts', 'catalog_subscriptions', 'ingest_batches'] -%}
  analyze {% for table in tables %}{{ source('raw', table) }}{{ ", " if not loop.last }}{% endfor %}
{% endmacro %}

{#- PostgreSQL: ANALYZE the tables of `schema` named like `name_like` whose statistics are
    missing or stale (more than a tenth of the rows changed since the last analyze); the rest
    keep theirs. A fresh load of events or a full rating gets statistics before anything plans
    a query on them (autovacuum would come later); a rebuild after a few new events pays
    nothing. Stale statistics are still good for "what is new" conditions: a landed_at or
    rating_run above the histogram's end is estimated as a few rows, which is what we want. -#}
{% macro analyze_if_stale(schema, name_like) %}
  {{ return(adapter.dispatch('analyze_if_stale', 'valueverse')(schema, name_like)) }}
{% endmacro %}

{% macro default__analyze_if_stale(schema, name_like) %}
  select 1
{% endmacro %}

{% macro postgres__analyze_if_stale(schema, name_like) %}
  {%- set stale = [] -%}
  {%- if execute -%}
    {%- set found = run_query(
          "select format('%I.%I', schemaname, relname) from pg_stat_user_tables"
          ~ " where schemaname = '" ~ schema ~ "' and relname like '" ~ name_like ~ "'"
          ~ " and (coalesce(last_analyze, last_autoanalyze) is null"
          ~ " or n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000))") -%}
    {%- set stale = found.columns[0].values() -%}
  {%- endif -%}
  {%- if stale | length > 0 %}
  analyze {{ stale | join(', ') }}
  {%- else %}
  select 1
  {%- endif %}
{% endmacro %}
