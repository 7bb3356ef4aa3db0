{{ config(**orangescrum.per_entity_config('project_id')) }}

with

events as (

    -- An incremental run rebuilds only entities with an event in the lookback window.
    select * from {{ ref('stg_orangescrum__events') }}
    where {{ orangescrum.touched_in_lookback_window(
        'project_id',
        ref('stg_orangescrum__events'),
        "event_type in ('project_member_added', 'project_member_removed')"
    ) }}

),

membership_events as (

    select
        event_id,
        project_id,
        subject_user_id as user_id,
        company_id,
        event_type,
        event_timestamp
    from events
    where
        event_type in ('project_member_added', 'project_member_removed')
        and project_id is not null
        and subject_user_id is not null

),

ranked_membership_events as (

    select
        *,
        row_number() over (
            partition by project_id, user_id
            order by event_timestamp desc, event_id desc
        ) as recency_rank,
        min(
            case when event_type = 'project_member_added' then event_timestamp end
        ) over (partition by project_id, user_id) as first_added_at,
        count(*) over (partition by project_id, user_id) as membership_event_count
    from membership_events

),

latest_membership_events as (

    select
        project_id,
        user_id,
        company_id,
        event_type = 'project_member_added' as is_current_member,
        first_added_at,
        event_timestamp as last_changed_at,
        membership_event_count,
        {{ orangescrum.loaded_at() }} as loaded_at
    from ranked_membership_events
    where recency_rank = 1

)

select * from latest_membership_events
