{#
    Incremental (DuckDB): a run recomputes the tasks whose cycle times or state history
    changed since this table's latest load; BigQuery rebuilds the table.
#}

{{ config(**orangescrum.per_entity_config('task_id')) }}

{%- set changed_tasks = orangescrum.changed_since_last_load(
    'task_id', [ref('int_tasks_cycle_times'), ref('int_tasks_state_history')]
) -%}

with

tasks_cycle_times as (

    select * from {{ ref('int_tasks_cycle_times') }}
    where {{ changed_tasks }}

),

tasks_state_history as (

    select * from {{ ref('int_tasks_state_history') }}
    where {{ changed_tasks }}

),

current_states as (

    select * from tasks_state_history
    where is_current_version

),

state_version_counts as (

    select
        task_id,
        count(*) as state_version_count
    from tasks_state_history
    group by task_id

),

joined as (

    -- Every task an event points at; attributes from its current state when a payload
    -- carried one (null otherwise: an inferred member).
    select
        tasks_cycle_times.task_id,
        coalesce(current_states.company_id, tasks_cycle_times.first_closed_company_id)
            as company_id,
        coalesce(
            current_states.project_id, tasks_cycle_times.first_closed_project_id, -1
        ) as project_id,
        current_states.task_number,
        current_states.task_title,
        current_states.task_type,
        current_states.task_priority,
        current_states.task_status,
        current_states.task_status_legend,
        current_states.task_assignee_user_id,
        current_states.task_milestone_id,
        current_states.task_due_date,
        current_states.task_estimated_hours,
        current_states.task_story_points,
        coalesce(state_version_counts.state_version_count, 0) as state_version_count,
        current_states.task_id is null as is_inferred_member,
        tasks_cycle_times.created_at,
        tasks_cycle_times.first_event_at,
        tasks_cycle_times.first_closed_at,
        tasks_cycle_times.cycle_time_hours,
        current_states.valid_from as state_valid_from
    from tasks_cycle_times
    left join current_states
        on tasks_cycle_times.task_id = current_states.task_id
    left join state_version_counts
        on tasks_cycle_times.task_id = state_version_counts.task_id

),

final as (

    select
        cast(task_id as {{ dbt.type_bigint() }}) as task_id,
        cast(company_id as {{ dbt.type_bigint() }}) as company_id,
        cast(project_id as {{ dbt.type_bigint() }}) as project_id,
        cast(task_number as {{ dbt.type_bigint() }}) as task_number,
        task_title,
        task_type,
        task_priority,
        task_status,
        cast(task_status_legend as {{ dbt.type_bigint() }}) as task_status_legend,
        cast(task_assignee_user_id as {{ dbt.type_bigint() }}) as task_assignee_user_id,
        cast(task_milestone_id as {{ dbt.type_bigint() }}) as task_milestone_id,
        cast(task_due_date as date) as task_due_date,
        cast(task_estimated_hours as {{ orangescrum.double_type() }})
            as task_estimated_hours,
        cast(task_story_points as {{ dbt.type_bigint() }}) as task_story_points,
        cast(state_version_count as {{ dbt.type_bigint() }}) as state_version_count,
        is_inferred_member,
        created_at,
        first_event_at,
        first_closed_at,
        cast(cycle_time_hours as {{ orangescrum.double_type() }}) as cycle_time_hours,
        state_valid_from,
        {{ orangescrum.loaded_at() }} as loaded_at
    from joined

)

select * from final
