{#- The key of every new row (rows matching `new_rows`, a condition that may use the
    placeholders of get_where_subquery, e.g. __unverified_ratings__) is unique among ALL rows of
    the model: new rows are compared with old ones too, old ones with each other were compared
    when they were new (DECISIONLOG.md, "Scoped tests"). `filter_column` names a column of the
    key that is cheap to filter on (an indexed or stored column rather than a computed one). -#}
{% test unique_among_new_rows(model, combination_of_columns, new_rows, filter_column) %}
{%- set condition = expand_test_placeholders(new_rows) | trim %}
select {{ combination_of_columns | join(', ') }}, count(*) as row_count
from {{ model }}
{%- if condition != 'true' %}
where {{ filter_column }} in (
    select {{ filter_column }} from {{ model }} where {{ condition }}
)
{%- endif %}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
