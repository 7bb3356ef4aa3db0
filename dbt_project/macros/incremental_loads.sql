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


{% macro in_latest_load(entity_column, relation) %}
    {#-
        Boolean SQL for a singular test over a per-entity model: entity_column names an
        entity the model's latest load wrote (every row, with test_scope all).
    -#}
    {% if orangescrum.test_scope() == 'all' %}
        {{ return('true') }}
    {% endif %}
    {%- set condition -%}
        {{ entity_column }} in (
            select {{ entity_column }}
            from {{ relation }}
            where {{ orangescrum.in_latest_load_rows(relation) }}
        )
    {%- endset -%}
    {{ return(condition) }}
{% endmacro %}


{% macro in_latest_load_rows(relation) %}
    {#- Boolean SQL on relation's rows: written by its latest load (its greatest loaded_at). -#}
    {{ return('loaded_at = (select max(loaded_at) from ' ~ relation ~ ')') }}
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
        {% do conditions.append(orangescrum.in_latest_load_rows(relation)) %}
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
    Models keyed by entity (state histories, cycle times, memberships, project tasks, and
    the marts built from them: the history marts, dim_tasks, fact_time_entries).
    DuckDB: incremental, delete+insert on the entity key; a run rewrites the entities with an
    event in the lookback window (each model's SQL says how much of their past it re-reads),
    the marts the entities whose upstream rows changed (changed_since_last_load).
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


{% macro per_entity_config(unique_key) %}
    {#-
        The config() arguments of a model keyed by entity: incremental on DuckDB, where a
        run deletes and re-inserts every row of the entities it recomputes; a table on
        BigQuery. Usage: {{ config(**orangescrum.per_entity_config('task_id')) }}
    -#}
    {{ return({
        'materialized': orangescrum.per_entity_materialization(),
        'unique_key': unique_key,
        'incremental_strategy': 'delete+insert',
        'on_schema_change': 'append_new_columns',
    }) }}
{% endmacro %}


{#
    Incremental strategy `replace_versions_from` (DuckDB) of a model whose rows are versions
    keyed by (<entity key>, valid_from) and whose run recomputes each entity it touches from
    one version on: the entity's stored versions from the earliest recomputed one on are
    deleted, the recomputed ones inserted; its earlier versions stay as they are.
    dim_tasks_history uses it: a one-day run rewrites a task's latest versions, not all of them.
#}
{% macro get_incremental_replace_versions_from_sql(arg_dict) %}
    {%- set entity_key = arg_dict['unique_key'] -%}
    {%- if entity_key is not string -%}
        {% do exceptions.raise_compiler_error(
            "incremental_strategy 'replace_versions_from' needs unique_key to be the entity "
            ~ "key column (one name), got " ~ entity_key
        ) %}
    {%- endif -%}
    {%- set columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }} as stored
    using (
        select
            {{ entity_key }},
            min(valid_from) as recomputed_from
        from {{ arg_dict['temp_relation'] }}
        group by {{ entity_key }}
    ) as recomputed
    where
        stored.{{ entity_key }} = recomputed.{{ entity_key }}
        and stored.valid_from >= recomputed.recomputed_from;

    insert into {{ arg_dict['target_relation'] }} ({{ columns_csv }})
    select {{ columns_csv }}
    from {{ arg_dict['temp_relation'] }}
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


{% macro changed_since_last_load(entity_column, upstream_relations) %}
    {#-
        Boolean SQL for an incremental run of a model built from per-entity models (the
        history marts, dim_tasks, fact_time_entries): entity_column names an entity with a
        row that one of upstream_relations wrote after this model's latest load, i.e. in
        this invocation or in one that did not run this model. Those upstream models are
        incremental with loaded_at, so this is exactly the set of entities whose inputs
        changed: the model recomputes each of them from all its rows and nothing else, and
        one new day costs what the day touched, not the whole history. A full build of an
        upstream model stamps every row, so its dependants then recompute everything.
        Always true on a full build. (is_incremental unqualified: unit tests override it
        in the model's context, not in the project namespace.)
    -#}
    {% if not is_incremental() %}
        {{ return('true') }}
    {% endif %}
    {%- set last_load = orangescrum.latest_load_at(this) -%}
    {%- set condition -%}
        {{ entity_column }} in (
            {%- for upstream in upstream_relations %}
            select {{ entity_column }}
            from {{ upstream }}
            where
                loaded_at > {{ last_load }}
                and {{ entity_column }} is not null
            {%- if not loop.last %}
            union all
            {%- endif %}
            {%- endfor %}
        )
    {%- endset -%}
    {{ return(condition) }}
{% endmacro %}


{% macro latest_load_at(relation) %}
    {#- SQL: the loaded_at of relation's latest load (before any load when it is empty). -#}
    {{ return(
        '(select coalesce(max(loaded_at), ' ~ orangescrum.earliest_timestamp() ~ ') from '
        ~ relation ~ ')'
    ) }}
{% endmacro %}


{% macro earliest_timestamp() %}
    {#- SQL timestamp before any load: what an empty table's latest load compares as. -#}
    {{ return("cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")") }}
{% endmacro %}
