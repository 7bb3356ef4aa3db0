{#
    What dim_users aggregates, pre-aggregated per day: each incremental run recomputes the
    lookback window's days (as agg_daily_metrics does), so the dimension folds a few rows per
    user instead of re-reading every event.
#}
{{ config(**orangescrum.daily_rollup_config(['user_id'])) }}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        where {{ orangescrum.in_lookback_window('activity_date') }}
    {% endif %}

),

user_mentions as (

    -- Every role in which an event names a user: actor, payload subject, owner, assignee.
    select
        activity_date,
        user_id,
        company_id
    from events
    union all
    select
        activity_date,
        subject_user_id as user_id,
        company_id
    from events
    where subject_user_id is not null
    union all
    select
        activity_date,
        project_owner_user_id as user_id,
        company_id
    from events
    where project_owner_user_id is not null
    union all
    select
        activity_date,
        task_assignee_user_id as user_id,
        company_id
    from events
    where task_assignee_user_id is not null

),

mentioned_users as (

    select
        activity_date,
        user_id,
        min(company_id) as first_company_id
    from user_mentions
    group by activity_date, user_id

),

user_activity as (

    select
        activity_date,
        user_id,
        min(event_timestamp) as first_activity_at,
        max(event_timestamp) as last_activity_at,
        max(
            case when event_type = 'user_logged_in' then event_timestamp end
        ) as last_login_at
    from events
    group by activity_date, user_id

),

user_lifecycle as (

    select
        activity_date,
        subject_user_id as user_id,
        min(
            case
                when event_type in ('user_registered', 'user_invited')
                    then event_timestamp
            end
        ) as registered_at,
        max(
            case when event_type = 'user_disabled' then event_timestamp end
        ) as last_disabled_at
    from events
    where subject_user_id is not null
    group by activity_date, subject_user_id

),

joined as (

    select
        mentioned_users.activity_date,
        mentioned_users.user_id,
        mentioned_users.first_company_id,
        user_activity.first_activity_at,
        user_activity.last_activity_at,
        user_activity.last_login_at,
        user_lifecycle.registered_at,
        user_lifecycle.last_disabled_at,
        {{ orangescrum.loaded_at() }} as loaded_at
    from mentioned_users
    left join user_activity
        on
            mentioned_users.activity_date = user_activity.activity_date
            and mentioned_users.user_id = user_activity.user_id
    left join user_lifecycle
        on
            mentioned_users.activity_date = user_lifecycle.activity_date
            and mentioned_users.user_id = user_lifecycle.user_id

)

select * from joined
