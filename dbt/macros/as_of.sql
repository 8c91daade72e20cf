{#- The invoicing date: periods ending on or before it are invoiced (closed), later ones are
    drafts. ingestion/billing/dbt_runner.py writes it into <target schema>.valueverse_run_context before
    every dbt command, and it is read there when a node runs, not passed as a var: a var that
    changes (a daily as_of) makes dbt parse the whole project again, ~5 s per build. A var
    as_of (YYYY-MM-DD) still wins when given (the unit tests set it); with neither, the run's
    UTC date. -#}
{% macro as_of_date() -%}
  {%- set value = var('as_of', none) -%}
  {%- if (value is none or value == '') and execute -%}
    {%- set value = run_context_as_of() -%}
  {%- endif -%}
  {%- if value is none or value == '' -%}
    {%- set value = run_started_at.strftime('%Y-%m-%d') -%}
  {%- endif -%}
  {%- set value = value | string -%}
  {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
    {{ exceptions.raise_compiler_error("as_of must be a date YYYY-MM-DD, got " ~ value) }}
  {%- endif -%}
  cast('{{ value }}' as date)
{%- endmacro %}

{#- The as_of ingestion/billing/dbt_runner.py recorded for this run (none without the table). -#}
{% macro run_context_as_of() -%}
  {%- set relation = adapter.get_relation(
        database=target.database, schema=target.schema, identifier='valueverse_run_context') -%}
  {%- if relation is none -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set found = run_query('select max(as_of) from ' ~ relation) -%}
  {%- set value = found.columns[0].values()[0] -%}
  {{ return(none if value is none else (value | string)[:10]) }}
{%- endmacro %}

{#- The current catalog: staging reads only rows of the newest catalog_version. -#}
{% macro current_catalog_version() -%}
  (select max(catalog_version) from {{ source('raw', 'catalog_versions') }})
{%- endmacro %}
