{# Length in bytes of a BLOB / BYTES expression. #}
{% macro byte_length(bytes_expression) %}
    {{ return(adapter.dispatch('byte_length', 'orangescrum')(bytes_expression)) }}
{% endmacro %}

{% macro default__byte_length(bytes_expression) %}
    octet_length({{ bytes_expression }})
{% endmacro %}

{% macro bigquery__byte_length(bytes_expression) %}
    byte_length({{ bytes_expression }})
{% endmacro %}
