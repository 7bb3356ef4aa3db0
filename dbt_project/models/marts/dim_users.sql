with

users_daily_activity as (

    select * from {{ ref('int_users_daily_activity') }}

),

users_state_history as (

    select * from {{ ref('int_users_state_history') }}

),

users as (

    -- Every user an event names, in any role.
    select
        user_id,
        min(first_company_id) as first_company_id,
        min(first_activity_at) as first_activity_at,
        max(last_activity_at) as last_activity_at,
        max(last_login_at) as last_login_at,
        min(registered_at) as registered_at,
        max(last_disabled_at) as last_disabled_at
    from users_daily_activity
    group by user_id

),

state_version_counts as (

    select
        user_id,
        count(*) as state_version_count
    from users_state_history
    group by user_id

),

current_states as (

    select * from users_state_history
    where is_current_version

),

joined as (

    select
        users.user_id,
        coalesce(current_states.company_id, users.first_company_id) as company_id,
        current_states.user_initials,
        current_states.user_email_hash,
        current_states.user_role,
        current_states.user_type,
        current_states.user_timezone,
        coalesce(state_version_counts.state_version_count, 0)
            as state_version_count,
        current_states.is_user_active as is_active,
        current_states.user_id is null as is_inferred_member,
        false as is_unknown_member,
        users.registered_at,
        current_states.user_created_at,
        current_states.valid_from as state_valid_from,
        case
            when not current_states.is_user_active
                then users.last_disabled_at
        end as disabled_at,
        users.first_activity_at,
        users.last_activity_at,
        users.last_login_at
    from users
    left join current_states
        on users.user_id = current_states.user_id
    left join state_version_counts
        on users.user_id = state_version_counts.user_id

),

unknown_member as (

    select
        cast(-1 as {{ dbt.type_bigint() }}) as user_id,
        cast(null as {{ dbt.type_bigint() }}) as company_id,
        'Unknown user' as user_initials,
        cast(null as {{ dbt.type_string() }}) as user_email_hash,
        cast(null as {{ dbt.type_string() }}) as user_role,
        cast(null as {{ dbt.type_string() }}) as user_type,
        cast(null as {{ dbt.type_string() }}) as user_timezone,
        cast(0 as {{ dbt.type_bigint() }}) as state_version_count,
        cast(null as {{ dbt.type_boolean() }}) as is_active,
        false as is_inferred_member,
        true as is_unknown_member,
        cast(null as {{ dbt.type_timestamp() }}) as registered_at,
        cast(null as {{ dbt.type_timestamp() }}) as user_created_at,
        cast(null as {{ dbt.type_timestamp() }}) as state_valid_from,
        cast(null as {{ dbt.type_timestamp() }}) as disabled_at,
        cast(null as {{ dbt.type_timestamp() }}) as first_activity_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_activity_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_login_at

),

final as (

    select * from joined
    union all
    select * from unknown_member

)

select * from final
