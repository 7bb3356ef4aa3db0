{{
    config(
        materialized=orangescrum.per_entity_materialization(),
        unique_key='project_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

with

events as (

    -- An incremental run rebuilds only entities with an event in the lookback window.
    select * from {{ ref('stg_orangescrum__events') }}
    where {{ orangescrum.touched_in_lookback_window(
        'project_id',
        ref('stg_orangescrum__events'),
        "project_name is not null"
    ) }}

),

project_snapshots as (

    -- Every event with a project payload is a snapshot of the project right after it.
    select
        event_id,
        project_id,
        company_id,
        event_type,
        event_timestamp,
        project_name,
        project_short_name,
        project_type,
        project_status,
        project_owner_user_id,
        project_start_date,
        project_end_date,
        project_estimated_hours
    from events
    where
        project_id is not null
        and project_name is not null

),

flagged_snapshots as (

    select
        *,
        {{ orangescrum.opens_new_version(
            [
                'company_id',
                'project_name',
                'project_short_name',
                'project_type',
                'project_status',
                'project_owner_user_id',
                'project_start_date',
                'project_end_date',
                'project_estimated_hours',
            ],
            partition_by='project_id',
            order_by='event_timestamp, event_id'
        ) }} as is_new_version
    from project_snapshots

),

versions as (

    select
        event_id,
        project_id,
        company_id,
        event_type as opened_by_event_type,
        project_name,
        project_short_name,
        project_type,
        project_status,
        project_owner_user_id,
        project_start_date,
        project_end_date,
        project_estimated_hours,
        event_timestamp as valid_from,
        row_number() over (
            partition by project_id
            order by event_timestamp, event_id
        ) as version_number,
        lead(event_timestamp) over (
            partition by project_id
            order by event_timestamp, event_id
        ) as valid_to
    from flagged_snapshots
    where is_new_version

),

final as (

    select
        *,
        valid_to is null as is_current_version,
        {{ orangescrum.loaded_at() }} as loaded_at
    from versions

)

select * from final
