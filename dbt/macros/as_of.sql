{#- The invoicing date: periods ending on or before it are invoiced (closed), later ones are
    drafts. From var('as_of') (YYYY-MM-DD); without it, the run's UTC date. -#}
{% macro as_of_date() -%}
  {%- set value = var('as_of', none) -%}
  {%- if value is none or value == '' -%}
    {%- set value = run_started_at.strftime('%Y-%m-%d') -%}
  {%- endif -%}
  {%- set value = value | string -%}
  {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
    {{ exceptions.raise_compiler_error("var('as_of') must be a date YYYY-MM-DD, got " ~ value) }}
  {%- endif -%}
  cast('{{ value }}' as date)
{%- endmacro %}

{#- The current catalog: staging reads only rows of the newest catalog_version. -#}
{% macro current_catalog_version() -%}
  (select max(catalog_version) from {{ source('raw', 'catalog_versions') }})
{%- endmacro %}
