{#-
    Incremental runs (DuckDB) read the window's events only and continue each task's
    history from its version open at the window start (macros/state_history.sql).
-#}
{%- set task_state_columns = [
    'project_id',
    'company_id',
    'task_number',
    'task_title',
    'task_type',
    'task_priority',
    'task_status',
    'task_status_legend',
    'task_assignee_user_id',
    'task_due_date',
    'task_estimated_hours',
    'task_story_points',
    'task_milestone_id',
] -%}

{{
    config(
        materialized=orangescrum.per_entity_materialization(),
        unique_key='task_id',
        incremental_strategy='delete+insert',
        incremental_predicates=[orangescrum.version_reaches_lookback_window()],
        on_schema_change='append_new_columns'
    )
}}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        where {{ orangescrum.from_lookback_window_start('activity_date') }}
    {% endif %}

),

new_snapshots as (

    -- Every event with a task payload is a snapshot of the task right after it.
    select
        event_id,
        task_id,
        user_id as changed_by_user_id,
        event_type,
        event_timestamp,
        {% for column in task_state_columns -%}
            {{ column }},
        {% endfor -%}
        cast(null as {{ dbt.type_bigint() }}) as continued_version_number,
        cast(null as {{ dbt.type_string() }}) as continued_previous_task_status
    from events
    where
        task_id is not null
        and task_status is not null

),

{% if is_incremental() %}

    versions_open_at_window_start as (

        -- The stored version each task with a new snapshot was in when the window began:
        -- its history continues from there (version number, previous status).
        select
            event_id,
            task_id,
            changed_by_user_id,
            opened_by_event_type as event_type,
            valid_from as event_timestamp,
            {% for column in task_state_columns -%}
                {{ column }},
            {% endfor -%}
            version_number as continued_version_number,
            previous_task_status as continued_previous_task_status
        from {{ this }}
        where
            {{ orangescrum.version_open_at_window_start() }}
            and task_id in (select task_id from new_snapshots)

    ),

{% endif %}

task_snapshots as (

    select * from new_snapshots
    {% if is_incremental() %}
        union all
        select * from versions_open_at_window_start
    {% endif %}

),

flagged_snapshots as (

    select
        *,
        {{ orangescrum.opens_new_version(
            task_state_columns,
            partition_by='task_id',
            order_by='event_timestamp, event_id'
        ) }} as is_new_version
    from task_snapshots

),

versions as (

    select
        event_id,
        task_id,
        changed_by_user_id,
        event_type as opened_by_event_type,
        {% for column in task_state_columns -%}
            {{ column }},
        {% endfor -%}
        event_timestamp as valid_from,
        {{ orangescrum.version_number(
            partition_by='task_id',
            order_by='event_timestamp, event_id'
        ) }} as version_number,
        coalesce(
            continued_previous_task_status,
            lag(task_status) over (
                partition by task_id
                order by event_timestamp, event_id
            )
        ) as previous_task_status,
        lead(event_timestamp) over (
            partition by task_id
            order by event_timestamp, event_id
        ) as valid_to
    from flagged_snapshots
    where is_new_version

),

final as (

    select
        *,
        valid_to is null as is_current_version,
        (
            task_status = 'Closed'
            and previous_task_status is distinct from 'Closed'
        ) as is_closing_transition,
        {{ orangescrum.loaded_at() }} as loaded_at
    from versions

)

select * from final
