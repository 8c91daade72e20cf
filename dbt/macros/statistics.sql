{#- PostgreSQL plans the event-sized joins from table statistics, and the raw tables need
    three kinds of care at the start of every run (raw.maintain_statistics() in
    ingestion/landing/raw_ddl.py does them):
    - the catalog tables are rewritten by every `catalog load` and are too small for autovacuum
      to analyze them soon; without statistics the planner guesses a couple of rows per catalog
      table and picks nested loops that rescan every event once per charge (minutes instead of
      seconds at 1M events). Analyzing them is a few milliseconds;
    - raw.events and its partitions are analyzed when their statistics are missing or stale
      (the rule of analyze_if_stale below);
    - the BRIN block ranges of raw.events landed since the last summary are summarized: until
      then a BRIN scan must read them, so "events landed since" would read every event the sink
      wrote since its index was created.
    Only the owner of a table may do these, and no service logs in as the owner of raw
    (ingestion/roles/service_roles.py), so they run in a SECURITY DEFINER function that the
    billing role (which runs dbt) may call. DuckDB keeps its own statistics: nothing to do. -#}
{% macro maintain_raw_statistics() %}
  {{ return(adapter.dispatch('maintain_raw_statistics', 'valueverse')()) }}
{% endmacro %}

{% macro default__maintain_raw_statistics() %}
  select 1
{% endmacro %}

{% macro postgres__maintain_raw_statistics() %}
  select raw.maintain_statistics()
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
