{#- Custom schemas are used as written (`marts`, not `analytics_marts`): analysts and the
    dashboards read marts.invoice_lines on every warehouse. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{ target.schema }}
  {%- else -%}
    {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
