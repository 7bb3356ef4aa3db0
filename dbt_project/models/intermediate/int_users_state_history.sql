{{
    config(
        materialized=orangescrum.per_entity_materialization(),
        unique_key='user_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

with

events as (

    -- An incremental run rebuilds only entities with an event in the lookback window.
    select * from {{ ref('stg_orangescrum__events') }}
    where {{ orangescrum.touched_in_lookback_window(
        'subject_user_id',
        ref('stg_orangescrum__events')
    ) }}

),

user_snapshots as (

    -- Every event with a user payload is a snapshot of that user right after the event.
    select
        event_id,
        subject_user_id as user_id,
        company_id,
        event_type,
        event_timestamp,
        user_name,
        user_email,
        user_role,
        user_type,
        is_user_active,
        user_timezone,
        user_created_at
    from events
    where subject_user_id is not null

),

flagged_snapshots as (

    select
        *,
        {{ orangescrum.opens_new_version(
            [
                'company_id',
                'user_name',
                'user_email',
                'user_role',
                'user_type',
                'is_user_active',
                'user_timezone',
                'user_created_at',
            ],
            partition_by='user_id',
            order_by='event_timestamp, event_id'
        ) }} as is_new_version
    from user_snapshots

),

versions as (

    select
        event_id,
        user_id,
        company_id,
        event_type as opened_by_event_type,
        user_name,
        user_email,
        user_role,
        user_type,
        is_user_active,
        user_timezone,
        user_created_at,
        event_timestamp as valid_from,
        row_number() over (
            partition by user_id
            order by event_timestamp, event_id
        ) as version_number,
        lead(event_timestamp) over (
            partition by user_id
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
