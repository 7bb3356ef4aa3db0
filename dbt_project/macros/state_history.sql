{#
    SCD type 2 state histories: int_users_state_history, int_projects_state_history and
    int_tasks_state_history share their mechanics here; each model keeps only what is its
    own (its entity key, its attribute columns, which events are snapshots of it). The
    history marts (dim_*_history) run the same CTEs over a state history's versions to
    re-collapse them once the versions that lasted no time are dropped.

        {%- set user_state_columns = ['company_id', 'user_initials', ...] -%}
        {{ config(**orangescrum.state_history_config('user_id')) }}
        with
        events as (...),                 -- import CTE: stg_orangescrum__events
        new_snapshots as (               -- the entity's snapshots among the events:
            select event_id, <entity key>, <carried columns>, event_type,
                event_timestamp, <state columns> from events where ...
        ),
        {{ orangescrum.state_history_ctes('user_id', user_state_columns) }},
        final as (select *, <model-specific flags>, loaded_at from state_versions)
        select * from final

    state_history_ctes adds the CTEs continued_versions (incremental runs), snapshots,
    flagged_snapshots, versions and state_versions, which holds, in this order: event_id,
    the entity key, the carried columns, opened_by_event_type, the state columns,
    valid_from, version_number, previous_<column> for each tracked column, valid_to,
    is_current_version.
#}

{% macro state_history_config(entity_key) %}
    {#-
        The config() arguments of a state history: incremental on DuckDB (delete+insert
        of the entity's versions from the one open at the window start on), a table on
        BigQuery. Usage: {{ config(**orangescrum.state_history_config('user_id')) }}
    -#}
    {% set state_history_config = orangescrum.per_entity_config(entity_key) %}
    {% do state_history_config.update({
        'incremental_predicates': [orangescrum.version_reaches_lookback_window()],
    }) %}
    {{ return(state_history_config) }}
{% endmacro %}


{% macro state_history_ctes(
    entity_key,
    state_columns,
    carried_columns=[],
    previous_value_columns={},
    snapshots_cte='new_snapshots',
    continue_stored_versions=true,
    continued_versions_cte=none
) %}
    {#-
        The CTEs that turn an entity's snapshots into SCD 2 versions (no leading or
        trailing comma: the model writes them around the call).

        entity_key             the entity's key column (partitions every window).
        state_columns          the attributes: a version opens when one of them changes.
        carried_columns        columns of the event that opened a version, kept with it but
                               never compared (int_tasks_state_history: changed_by_user_id).
        previous_value_columns {column: SQL type}: adds previous_<column>, the column's value
                               in the previous version (null for the first), continued across
                               incremental runs (int_tasks_state_history: task_status).
        snapshots_cte          the model's CTE of new snapshots, with the columns event_id,
                               <entity_key>, <carried_columns>, event_type, event_timestamp,
                               <state_columns>.
        continue_stored_versions  on an incremental run, continue each entity from its
                               version stored in {{ this }} (the state histories); false for
                               a table that only re-collapses versions (the history marts).
        continued_versions_cte on an incremental run, the model's own CTE of the stored
                               versions to continue from, in the shape of continued_versions
                               below, instead of each entity's version open at the window
                               start (dim_tasks_history: the version open where the entity's
                               recomputed versions begin).

        Versions are ordered by event_timestamp, then event_id (a total order, so two events
        at the same instant open versions in a reproducible order).
    -#}
    {%- set order_by = 'event_timestamp, event_id' -%}
    {%- set entity_window -%}
        over (partition by {{ entity_key }} order by {{ order_by }})
    {%- endset -%}
    {%- set key_and_carried_columns = [entity_key] + carried_columns -%}
    {%- set continues = continue_stored_versions and is_incremental() -%}

    {%- if continues and not continued_versions_cte -%}
continued_versions as (

    -- The stored version each entity with a new snapshot was in when the window began:
    -- its history continues from there (version number, previous values).
    select
        event_id,
        {% for column in key_and_carried_columns -%}
            {{ column }},
        {% endfor -%}
        opened_by_event_type as event_type,
        valid_from as event_timestamp,
        {% for column in state_columns -%}
            {{ column }},
        {% endfor -%}
        {% for column in previous_value_columns -%}
            previous_{{ column }} as continued_previous_{{ column }},
        {% endfor -%}
        version_number as continued_version_number
    from {{ this }}
    where
        {{ orangescrum.version_open_at_window_start() }}
        and {{ entity_key }} in (select {{ entity_key }} from {{ snapshots_cte }})

),

{% endif -%}
snapshots as (

    select
        event_id,
        {% for column in key_and_carried_columns -%}
            {{ column }},
        {% endfor -%}
        event_type,
        event_timestamp,
        {% for column in state_columns -%}
            {{ column }},
        {% endfor -%}
        {% for column, column_type in previous_value_columns.items() -%}
            cast(null as {{ column_type }}) as continued_previous_{{ column }},
        {% endfor -%}
        cast(null as {{ dbt.type_bigint() }}) as continued_version_number
    from {{ snapshots_cte }}
    {% if continues %}
        union all
        select * from {{ continued_versions_cte or 'continued_versions' }}
    {% endif %}

),

flagged_snapshots as (

    select
        *,
        {{ orangescrum.opens_new_version(
            state_columns, partition_by=entity_key, order_by=order_by
        ) }} as is_new_version
    from snapshots

),

versions as (

    select
        event_id,
        {% for column in key_and_carried_columns -%}
            {{ column }},
        {% endfor -%}
        event_type as opened_by_event_type,
        {% for column in state_columns -%}
            {{ column }},
        {% endfor -%}
        event_timestamp as valid_from,
        {{ orangescrum.version_number(partition_by=entity_key, order_by=order_by) }}
            as version_number,
        {% for column in previous_value_columns -%}
            coalesce(
                continued_previous_{{ column }},
                lag({{ column }}) {{ entity_window }}
            ) as previous_{{ column }},
        {% endfor -%}
        lead(event_timestamp) {{ entity_window }} as valid_to
    from flagged_snapshots
    where is_new_version

),

state_versions as (

    select
        *,
        valid_to is null as is_current_version
    from versions

)

{%- endmacro %}


{#
    Boolean SQL: this row opens a new state version, i.e. it is the entity's first snapshot
    or at least one of `columns` differs (null-safely) from the entity's previous snapshot.
    Consecutive identical snapshots (a member added to a second project re-sends the same
    user) collapse into one version. Ordering must be total: pass a tie-breaker (event_id).
#}
{% macro opens_new_version(columns, partition_by, order_by) %}
    {%- set entity_window -%}
        over (partition by {{ partition_by }} order by {{ order_by }})
    {%- endset -%}
    (
        row_number() {{ entity_window }} = 1
        {%- for column in columns %}
        or {{ column }} is distinct from lag({{ column }}) {{ entity_window }}
        {%- endfor %}
    )
{% endmacro %}



{% macro version_number(partition_by, order_by) %}
    {#-
        SQL: the version's number within its entity, 1 for the first. On an incremental run
        the first snapshot of an entity is its stored version open at the window start
        (column continued_version_number, null on new snapshots), so numbering goes on from it.
    -#}
    (
        row_number() over (partition by {{ partition_by }} order by {{ order_by }})
        + coalesce(max(continued_version_number) over (partition by {{ partition_by }}), 1)
        - 1
    )
{% endmacro %}

{#
    Incremental runs of the state histories (DuckDB; BigQuery rebuilds them as tables).

    A run re-reads only the events from the lookback window's first day on. Each entity with
    a snapshot among them continues from its stored version that was open when the window
    started: that version and every later one are deleted (incremental_predicates =
    version_reaches_lookback_window()) and re-inserted, recomputed from that version plus the
    window's snapshots. A late event inside the window re-sorts into place; versions that
    ended before the window are neither re-read nor rewritten.
#}

{% macro version_reaches_lookback_window() %}
    {#- Boolean SQL on a state history: the version is current or ends inside the window. -#}
    {{ return(
        '(valid_to is null or valid_to >= ' ~ orangescrum.lookback_window_start_at() ~ ')'
    ) }}
{% endmacro %}


{% macro version_open_at_window_start() %}
    {#- Boolean SQL: the version an entity was in when the window's first day began. -#}
    {{ return(
        '(valid_from < ' ~ orangescrum.lookback_window_start_at() ~ ' and '
        ~ orangescrum.version_reaches_lookback_window() ~ ')'
    ) }}
{% endmacro %}
