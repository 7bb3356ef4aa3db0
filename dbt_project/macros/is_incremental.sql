{#
    Root-project override of dbt's is_incremental().

    Offline compiles of the BigQuery target (`dbt compile --no-introspect`) must
    not ask the warehouse whether a table exists: dbt-bigquery then waits on a token fetch.
    With --vars '{offline_is_incremental: true}' (or false) the answer comes from the var;
    left at null, dbt's own check runs, so real runs are unaffected.
#}
{% macro is_incremental() %}
    {% set offline_answer = var('offline_is_incremental', none) %}
    {% if offline_answer is not none %}
        {{ return(offline_answer | string | lower in ['true', '1', 'yes']) }}
    {% endif %}
    {{ return(dbt.is_incremental()) }}
{% endmacro %}
