{#- The column's values have at most 9 fraction digits, like quantities (decimal(38, 9)):
    tier bounds, package sizes and free units are compared and subtracted as quantities. -#}
{% test fits_quantity_precision(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and cast({{ column_name }} as {{ price_type() }})
      <> cast(cast({{ column_name }} as {{ qty_type() }}) as {{ price_type() }})
{% endtest %}
