{#-
    The versions of int_tasks_state_history that anyone could observe, for point-in-time
    joins. A version replaced by a later event at the same instant lasted no time: it is
    dropped, and the versions around it merge again when they are identical (the macro
    state_history_ctes, the one the state histories use, re-collapses them); the previous
    status is then the one of the previous version here.

    Incremental (DuckDB): a run recomputes the tasks whose state history changed since
    this table's latest load, each from all its versions; BigQuery rebuilds the table.
-#}

{{ config(**orangescrum.per_entity_config('task_id')) }}

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

with

tasks_state_history as (

    select * from {{ ref('int_tasks_state_history') }}
    where {{ orangescrum.changed_since_last_load(
        'task_id', [ref('int_tasks_state_history')]
    ) }}

),

observable_versions as (

    select
        event_id,
        task_id,
        changed_by_user_id,
        opened_by_event_type as event_type,
        valid_from as event_timestamp,
        {{ task_state_columns | join(',\n        ') }}
    from tasks_state_history
    where
        valid_to is null
        or valid_to > valid_from

),

{{ orangescrum.state_history_ctes(
    'task_id',
    task_state_columns,
    carried_columns=['changed_by_user_id'],
    previous_value_columns={'task_status': dbt.type_string()},
    snapshots_cte='observable_versions',
    continue_stored_versions=false
) }},

final as (

    select
        cast(task_id as {{ dbt.type_bigint() }}) as task_id,
        valid_from,
        valid_to,
        is_current_version as is_current,
        cast(version_number as {{ dbt.type_bigint() }}) as version_number,
        cast(company_id as {{ dbt.type_bigint() }}) as company_id,
        cast(coalesce(project_id, -1) as {{ dbt.type_bigint() }}) as project_id,
        cast(task_number as {{ dbt.type_bigint() }}) as task_number,
        task_title,
        task_type,
        task_priority,
        task_status,
        previous_task_status,
        cast(task_status_legend as {{ dbt.type_bigint() }}) as task_status_legend,
        cast(task_assignee_user_id as {{ dbt.type_bigint() }}) as task_assignee_user_id,
        cast(task_milestone_id as {{ dbt.type_bigint() }}) as task_milestone_id,
        cast(task_due_date as date) as task_due_date,
        cast(task_estimated_hours as {{ orangescrum.double_type() }})
            as task_estimated_hours,
        cast(task_story_points as {{ dbt.type_bigint() }}) as task_story_points,
        cast(changed_by_user_id as {{ dbt.type_bigint() }}) as changed_by_user_id,
        event_id as opened_by_event_id,
        opened_by_event_type,
        {{ orangescrum.loaded_at() }} as loaded_at
    from state_versions

)

select * from final
