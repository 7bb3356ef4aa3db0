{#
    Exact (interpolated) median of `column` over a window partition. BigQuery has no median
    aggregate, only the analytic percentile_cont; both adapters therefore compute it as a
    window and the caller reduces it per group (max() of a constant per partition).
#}
{% macro median_over(column, partition_by) %}
    {{ return(adapter.dispatch('median_over', 'orangescrum')(column, partition_by)) }}
{% endmacro %}

{% macro default__median_over(column, partition_by) %}
    quantile_cont({{ column }}, 0.5) over (partition by {{ partition_by | join(', ') }})
{% endmacro %}

{% macro bigquery__median_over(column, partition_by) %}
    percentile_cont({{ column }}, 0.5) over (partition by {{ partition_by | join(', ') }})
{% endmacro %}
