{#-
  Exact money arithmetic. NO FLOAT: in DuckDB, DECIMAL / anything returns DOUBLE, and
  CASE / LEAST over decimals of different scales silently rounds to the smaller scale.
  So every division here is integer division on HUGEINT (DuckDB) or numeric div()
  (PostgreSQL), and every value is cast to one of these fixed types before it meets
  another.
-#}

{%- macro qty_type() -%} decimal(38, 9) {%- endmacro -%}   {#- quantities, as landed: <= 9 fraction digits #}
{%- macro price_type() -%} decimal(38, 12) {%- endmacro -%} {#- catalog money and rates, as landed #}
{%- macro exact_type() -%} decimal(38, 21) {%- endmacro -%} {#- qty x price, exact (17 integer digits) #}
{%- macro money_type() -%} decimal(38, 4) {%- endmacro -%}  {#- a rounded amount: ISO 4217 exponents are 0..4 #}

{#- 10^exponent as an exact whole number (exponent is a column, 0..4). -#}
{% macro pow10(exponent) -%}
  (case {{ exponent }} when 0 then 1 when 1 then 10 when 2 then 100 when 3 then 1000 when 4 then 10000 end)
{%- endmacro %}

{#- 10^-exponent as an exact money_type decimal: turns a count of minor units into money. -#}
{% macro minor_unit(exponent) -%}
  cast(case {{ exponent }}
         when 0 then 1 when 1 then 0.1 when 2 then 0.01 when 3 then 0.001 when 4 then 0.0001
       end as {{ money_type() }})
{%- endmacro %}

{#- Round an exact decimal once to the currency's minor unit, half away from zero.
    round(decimal, n) is half-away-from-zero on both engines, but DuckDB wants a constant n,
    hence the CASE over the possible exponents. -#}
{% macro round_money(amount, exponent) -%}
  cast(case {{ exponent }}
         when 0 then cast(round({{ amount }}, 0) as {{ money_type() }})
         when 1 then cast(round({{ amount }}, 1) as {{ money_type() }})
         when 2 then cast(round({{ amount }}, 2) as {{ money_type() }})
         when 3 then cast(round({{ amount }}, 3) as {{ money_type() }})
         when 4 then cast(round({{ amount }}, 4) as {{ money_type() }})
       end as {{ money_type() }})
{%- endmacro %}

{#- round_half_away_from_zero(numerator / denominator) in minor units of `exponent`, as money.
    numerator: a decimal with at most 12 fraction digits (|value| < 10^21);
    denominator: a positive whole number (e.g. days in a period).
    Formula, for n >= 0: floor((2 * n * 10^s + d) / (2 * d)); the sign is put back after. -#}
{% macro div_round_money(numerator, denominator, exponent) %}
  {{ return(adapter.dispatch('div_round_money', 'valueverse')(numerator, denominator, exponent)) }}
{% endmacro %}
{#- DuckDB: a decimal(38, 12) value as a HUGEINT count of 10^-12 (or decimal(38, 9) as 10^-9),
    exact over the whole range: integer part and fraction are scaled apart, because
    multiplying the decimal itself by 10^12 would overflow its 26 integer digits. -#}
{% macro duckdb_unscaled(expr, type, factor) -%}
  {%- set x -%} cast({{ expr }} as {{ type }}) {%- endset -%}
  (cast(trunc({{ x }}) as hugeint) * {{ factor }} + cast(({{ x }} - trunc({{ x }})) * {{ factor }} as hugeint))
{%- endmacro %}

{% macro duckdb__div_round_money(numerator, denominator, exponent) -%}
  {%- set n -%} {{ duckdb_unscaled(numerator, price_type(), 1000000000000) }} {%- endset -%}
  {%- set d -%} (cast({{ denominator }} as hugeint) * 1000000000000) {%- endset -%}
  (cast(
     sign({{ n }}) * ((2 * abs({{ n }}) * {{ pow10(exponent) }} + {{ d }}) // (2 * {{ d }}))
   as decimal(38, 0)) * {{ minor_unit(exponent) }})
{%- endmacro %}
{% macro postgres__div_round_money(numerator, denominator, exponent) -%}
  {%- set n -%} cast({{ numerator }} as numeric) {%- endset -%}
  {%- set d -%} cast({{ denominator }} as numeric) {%- endset -%}
  cast(
    sign({{ n }}) * div(2 * abs({{ n }}) * {{ pow10(exponent) }} + {{ d }}, 2 * {{ d }})
    * {{ minor_unit(exponent) }}
  as {{ money_type() }})
{%- endmacro %}

{#- numerator / denominator rounded half away from zero to 12 fraction digits (price_type).
    For showing a prorated amount; the billed amount is always div_round_money of the
    exact fraction, never a rounding of this. -#}
{% macro div_round_12(numerator, denominator) %}
  {{ return(adapter.dispatch('div_round_12', 'valueverse')(numerator, denominator)) }}
{% endmacro %}
{% macro duckdb__div_round_12(numerator, denominator) -%}
  {%- set n -%} {{ duckdb_unscaled(numerator, price_type(), 1000000000000) }} {%- endset -%}
  {%- set d -%} cast({{ denominator }} as hugeint) {%- endset -%}
  (cast(sign({{ n }}) * ((2 * abs({{ n }}) + {{ d }}) // (2 * {{ d }})) as decimal(38, 0))
   * cast(0.000000000001 as {{ price_type() }}))
{%- endmacro %}
{% macro postgres__div_round_12(numerator, denominator) -%}
  {%- set n -%} cast({{ numerator }} as numeric) {%- endset -%}
  {%- set d -%} cast({{ denominator }} as numeric) {%- endset -%}
  cast(sign({{ n }}) * div(2 * abs({{ n }}) * 1000000000000 + {{ d }}, 2 * {{ d }})
       * 0.000000000001 as {{ price_type() }})
{%- endmacro %}

{#- ceil(numerator / denominator) as a whole number, for numerator >= 0 and denominator > 0,
    both with at most 9 fraction digits (quantities). Exact. -#}
{% macro ceil_div(numerator, denominator) %}
  {{ return(adapter.dispatch('ceil_div', 'valueverse')(numerator, denominator)) }}
{% endmacro %}
{% macro duckdb__ceil_div(numerator, denominator) -%}
  {%- set n -%} {{ duckdb_unscaled(numerator, qty_type(), 1000000000) }} {%- endset -%}
  {%- set d -%} {{ duckdb_unscaled(denominator, qty_type(), 1000000000) }} {%- endset -%}
  cast(({{ n }} + {{ d }} - 1) // {{ d }} as decimal(38, 0))
{%- endmacro %}
{% macro postgres__ceil_div(numerator, denominator) -%}
  {%- set n -%} cast({{ numerator }} as numeric) {%- endset -%}
  {%- set d -%} cast({{ denominator }} as numeric) {%- endset -%}
  cast(div({{ n }}, {{ d }}) + case when mod({{ n }}, {{ d }}) > 0 then 1 else 0 end as decimal(38, 0))
{%- endmacro %}
