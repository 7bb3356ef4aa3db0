{{
    config(
        materialized=orangescrum.per_entity_materialization(),
        unique_key='task_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

with

events as (

    -- An incremental run rebuilds only entities with an event in the lookback window.
    select * from {{ ref('stg_orangescrum__events') }}
    where {{ orangescrum.touched_in_lookback_window(
        'task_id',
        ref('stg_orangescrum__events')
    ) }}

),

task_snapshots as (

    -- Every event with a task payload is a snapshot of the task right after it.
    select
        event_id,
        task_id,
        project_id,
        company_id,
        user_id as changed_by_user_id,
        event_type,
        event_timestamp,
        task_number,
        task_title,
        task_type,
        task_priority,
        task_status,
        task_status_legend,
        task_assignee_user_id,
        task_due_date,
        task_estimated_hours,
        task_story_points,
        task_milestone_id
    from events
    where
        task_id is not null
        and task_status is not null

),

flagged_snapshots as (

    select
        *,
        {{ orangescrum.opens_new_version(
            [
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
            ],
            partition_by='task_id',
            order_by='event_timestamp, event_id'
        ) }} as is_new_version
    from task_snapshots

),

versions as (

    select
        event_id,
        task_id,
        project_id,
        company_id,
        changed_by_user_id,
        event_type as opened_by_event_type,
        task_number,
        task_title,
        task_type,
        task_priority,
        task_status,
        task_status_legend,
        task_assignee_user_id,
        task_due_date,
        task_estimated_hours,
        task_story_points,
        task_milestone_id,
        event_timestamp as valid_from,
        row_number() over (
            partition by task_id
            order by event_timestamp, event_id
        ) as version_number,
        lag(task_status) over (
            partition by task_id
            order by event_timestamp, event_id
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
