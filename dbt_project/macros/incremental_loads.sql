{#
    Incremental loads and the tests that check them.

    Every incremental model carries `loaded_at`: the start of the dbt invocation that last
    wrote the row. A generic test on an incremental model checks only the rows of the latest
    load (those with the model's greatest loaded_at): on a first or --full-refresh build
    that is every row; on an incremental run, what the run rewrote (the lookback window, or
    the entities touched in it). Rows outside it are unchanged since the build that tested
    them, so a one-day run is not charged for re-testing the whole history.
    `--vars '{test_scope: all}'` tests every row (the nightly orangescrum_spark_batch DAG does).
#}

{% macro loaded_at() %}
    {#- SQL timestamp literal of this invocation's start (UTC). -#}
    {{ return(
        "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f')
        ~ "' as " ~ dbt.type_timestamp() ~ ")"
    ) }}
{% endmacro %}


{% macro test_scope() %}
    {% set scope = var('test_scope', 'latest_load') %}
    {% if scope not in ['latest_load', 'all'] %}
        {% do exceptions.raise_compiler_error(
            "var test_scope must be 'latest_load' or 'all', got '" ~ scope ~ "'"
        ) %}
    {% endif %}
    {{ return(scope) }}
{% endmacro %}


{% macro tests_latest_load_only(node_id) %}
    {#- Whether tests of this node see only its latest load (see the note above). -#}
    {% set node = graph.nodes.get(node_id) if node_id else none %}
    {{ return(
        node is not none
        and node.config.materialized == 'incremental'
        and 'loaded_at' in node.columns
        and orangescrum.test_scope() == 'latest_load'
    ) }}
{% endmacro %}


{#
    Root-project override of dbt's get_where_subquery, which wraps the model a generic test
    reads: keeps the `where` config, adds the latest-load filter for incremental models.
#}
{% macro get_where_subquery(relation) -%}
    {% set conditions = [] %}
    {% set where = config.get('where', '') %}
    {% if where %}
        {% do conditions.append('(' ~ where ~ ')') %}
    {% endif %}
    {% if execute and orangescrum.tests_latest_load_only(model.get('attached_node')) %}
        {% do conditions.append(
            'loaded_at = (select max(loaded_at) from ' ~ relation ~ ')'
        ) %}
    {% endif %}
    {% if conditions %}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {% do return(filtered) %}
    {% endif %}
    {% do return(relation) %}
{%- endmacro %}


{#
    Models keyed by entity (state histories, cycle times, memberships, project tasks).
    DuckDB: incremental, delete+insert on the entity key; a run rewrites the entities with an
    event in the lookback window (each model's SQL says how much of their past it re-reads).
    BigQuery has no delete+insert and a merge cannot replace a variable number of rows per
    key, so there they are tables, rebuilt each run (a columnar scan BigQuery parallelises).
#}
{% macro per_entity_materialization() %}
    {{ return(adapter.dispatch('per_entity_materialization', 'orangescrum')()) }}
{% endmacro %}

{% macro default__per_entity_materialization() %}
    {{ return('incremental') }}
{% endmacro %}

{% macro bigquery__per_entity_materialization() %}
    {{ return('table') }}
{% endmacro %}


{% macro touched_in_lookback_window(entity_column, events_relation, events_filter='true') %}
    {#-
        Boolean SQL for an incremental run: entity_column names an entity with an event in
        the lookback window (events_filter narrows which events count). Always true otherwise.
    -#}
    {% if not orangescrum.is_incremental() %}
        {{ return('true') }}
    {% endif %}
    {%- set condition -%}
        {{ entity_column }} in (
            select {{ entity_column }}
            from {{ events_relation }}
            where
                {{ orangescrum.in_lookback_window('activity_date') }}
                and {{ entity_column }} is not null
                and ({{ events_filter }})
        )
    {%- endset -%}
    {{ return(condition) }}
{% endmacro %}
