{#
    The 8-byte floating point type. dbt.type_float() is 4-byte `float` on DuckDB, and
    BigQuery has no `double`, hence this one.
#}
{% macro double_type() %}
    {{ return(adapter.dispatch('double_type', 'orangescrum')()) }}
{% endmacro %}

{% macro default__double_type() %}
    {{ return('double') }}
{% endmacro %}

{% macro bigquery__double_type() %}
    {{ return('float64') }}
{% endmacro %}
