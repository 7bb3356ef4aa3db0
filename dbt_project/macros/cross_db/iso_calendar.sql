{#
    ISO 8601 calendar parts of a DATE expression (weeks start on Monday; week 1 holds the
    year's first Thursday). extract(isoyear ...) is the same on both adapters; these two
    are not.
#}
{% macro iso_day_of_week(date_expression) %}
    {{ return(adapter.dispatch('iso_day_of_week', 'orangescrum')(date_expression)) }}
{% endmacro %}

{% macro default__iso_day_of_week(date_expression) %}
    extract(isodow from {{ date_expression }})
{% endmacro %}

{% macro bigquery__iso_day_of_week(date_expression) %}
    {#- BigQuery's dayofweek is 1 = Sunday .. 7 = Saturday. -#}
    (mod(extract(dayofweek from {{ date_expression }}) + 5, 7) + 1)
{% endmacro %}


{% macro iso_week_of_year(date_expression) %}
    {{ return(adapter.dispatch('iso_week_of_year', 'orangescrum')(date_expression)) }}
{% endmacro %}

{% macro default__iso_week_of_year(date_expression) %}
    extract(week from {{ date_expression }})
{% endmacro %}

{% macro bigquery__iso_week_of_year(date_expression) %}
    extract(isoweek from {{ date_expression }})
{% endmacro %}
