{#-
  Everything that is spelled differently in DuckDB and PostgreSQL goes through
  adapter.dispatch here, so the models stay one text for both warehouses.
-#}

{#- Text value of key `key_expr` in a JSON object column of string values (NULL when absent).
    DuckDB: a JSON Pointer (RFC 6901: `/` + the key with `~` written `~0` and `/` written `~1`),
    so any key (even one that looks like a JSON path, `$x`, `a.b`, `[0]`) is matched literally;
    ~10x faster than casting the object to a MAP, which mattered at 10M events.
    PostgreSQL: the jsonb ->> operator. -#}
{% macro json_text(json_col, key_expr) %}
  {{ return(adapter.dispatch('json_text', 'valueverse')(json_col, key_expr)) }}
{% endmacro %}
{% macro duckdb__json_text(json_col, key_expr) -%}
  json_extract_string({{ json_col }}, '/' || replace(replace({{ key_expr }}, '~', '~0'), '/', '~1'))
{%- endmacro %}
{% macro postgres__json_text(json_col, key_expr) -%}
  ({{ json_col }} ->> {{ key_expr }})
{%- endmacro %}

{#- `n` whole months (or years) after a date, as a DATE. Both engines clamp to the month's
    last day (Jan 31 + 1 month = Feb 28; Feb 29 + 1 year = Feb 28), which is exactly the
    anniversary rule of the spec (section 3). Always add to the original anchor, never chain. -#}
{% macro add_months(date_expr, n_expr) %}
  {{ return(adapter.dispatch('add_months', 'valueverse')(date_expr, n_expr)) }}
{% endmacro %}
{% macro duckdb__add_months(date_expr, n_expr) -%}
  cast({{ date_expr }} + to_months(cast({{ n_expr }} as integer)) as date)
{%- endmacro %}
{% macro postgres__add_months(date_expr, n_expr) -%}
  cast({{ date_expr }} + make_interval(months => cast({{ n_expr }} as integer)) as date)
{%- endmacro %}

{#- First day of the date's month / year, as a DATE. -#}
{% macro month_start(date_expr) -%}
  cast(date_trunc('month', {{ date_expr }}) as date)
{%- endmacro %}
{% macro year_start(date_expr) -%}
  cast(date_trunc('year', {{ date_expr }}) as date)
{%- endmacro %}

{#- Whole days from d1 to d2 (d2 - d1) as an INTEGER. -#}
{% macro days_between(d1, d2) -%}
  cast(({{ d2 }}) - ({{ d1 }}) as integer)
{%- endmacro %}

{#- Calendar year / month number of a date, as INTEGER (PostgreSQL's extract returns numeric). -#}
{% macro year_of(date_expr) -%}
  cast(extract(year from {{ date_expr }}) as integer)
{%- endmacro %}
{% macro month_of(date_expr) -%}
  cast(extract(month from {{ date_expr }}) as integer)
{%- endmacro %}

{#- Order strings by code point (spec section 4: ties on `latest`, the export sort).
    DuckDB compares VARCHAR bytewise already (UTF-8 byte order = code point order). -#}
{% macro collate_c(expr) %}
  {{ return(adapter.dispatch('collate_c', 'valueverse')(expr)) }}
{% endmacro %}
{% macro duckdb__collate_c(expr) -%}
  {{ expr }}
{%- endmacro %}
{% macro postgres__collate_c(expr) -%}
  ({{ expr }} collate "C")
{%- endmacro %}

{#- TRUE when the whole string matches the regular expression. -#}
{% macro regex_full_match(expr, pattern) %}
  {{ return(adapter.dispatch('regex_full_match', 'valueverse')(expr, pattern)) }}
{% endmacro %}
{% macro duckdb__regex_full_match(expr, pattern) -%}
  regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}
{% macro postgres__regex_full_match(expr, pattern) -%}
  ({{ expr }} ~ '^(?:{{ pattern }})$')
{%- endmacro %}

{#- A row source of whole numbers k = 0..n_expr, joined laterally (n may be a column). -#}
{% macro lateral_series(n_expr, alias, column) %}
  {{ return(adapter.dispatch('lateral_series', 'valueverse')(n_expr, alias, column)) }}
{% endmacro %}
{% macro default__lateral_series(n_expr, alias, column) -%}
  cross join lateral generate_series(0, cast({{ n_expr }} as integer)) as {{ alias }}({{ column }})
{%- endmacro %}

{#- A date as 'YYYY-MM-DD' text whatever the session's DateStyle (used in ids). -#}
{% macro date_text(date_expr) %}
  {{ return(adapter.dispatch('date_text', 'valueverse')(date_expr)) }}
{% endmacro %}
{% macro duckdb__date_text(date_expr) -%}
  strftime({{ date_expr }}, '%Y-%m-%d')
{%- endmacro %}
{% macro postgres__date_text(date_expr) -%}
  to_char({{ date_expr }}, 'YYYY-MM-DD')
{%- endmacro %}

{#- Readable keys: an invoice is a subscription's period; a line adds its place on the invoice. -#}
{% macro invoice_id(subscription_id, period_start) -%}
  ({{ subscription_id }} || '/' || {{ date_text(period_start) }})
{%- endmacro %}
{% macro invoice_line_id(subscription_id, period_start, line_order, charge_index) -%}
  ({{ subscription_id }} || '/' || {{ date_text(period_start) }} || '/'
   || cast({{ line_order }} as varchar) || '/' || cast(coalesce({{ charge_index }}, 0) as varchar))
{%- endmacro %}
