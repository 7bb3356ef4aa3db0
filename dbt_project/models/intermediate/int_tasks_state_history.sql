{#-
    The SCD 2 mechanics (versions, valid_from / valid_to, incremental continuation from the
    version open at the window start) are macros/state_history.sql; this model says which
    events are snapshots of a task and which attributes make a version, keeps the acting
    user with each version and tracks the previous status (continued across runs too).
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

{{ config(**orangescrum.state_history_config('task_id')) }}

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
        {{ task_state_columns | join(',\n        ') }}
    from events
    where
        task_id is not null
        and task_status is not null

),

{{ orangescrum.state_history_ctes(
    'task_id',
    task_state_columns,
    carried_columns=['changed_by_user_id'],
    previous_value_columns={'task_status': dbt.type_string()}
) }},

final as (

    select
        *,
        (
            task_status = 'Closed'
            and previous_task_status is distinct from 'Closed'
        ) as is_closing_transition,
        {{ orangescrum.loaded_at() }} as loaded_at
    from state_versions

)

select * from final
