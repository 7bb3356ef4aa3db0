with

projects_daily_activity as (

    select * from {{ ref('int_projects_daily_activity') }}

),

project_tasks as (

    select * from {{ ref('int_project_tasks') }}

),

projects_state_history as (

    select * from {{ ref('int_projects_state_history') }}

),

project_memberships as (

    select * from {{ ref('int_project_memberships') }}

),

projects as (

    -- Every project an event points at, with or without a project payload.
    select
        project_id,
        min(first_company_id) as first_company_id,
        min(first_activity_at) as first_activity_at,
        max(last_activity_at) as last_activity_at,
        min(created_at) as created_at,
        max(last_archived_at) as last_archived_at
    from projects_daily_activity
    group by project_id

),

task_counts as (

    select
        project_id,
        count(*) as task_count
    from project_tasks
    group by project_id

),

member_counts as (

    select
        project_id,
        sum(case when is_current_member then 1 else 0 end) as member_count
    from project_memberships
    group by project_id

),

state_version_counts as (

    select
        project_id,
        count(*) as state_version_count
    from projects_state_history
    group by project_id

),

current_states as (

    select * from projects_state_history
    where is_current_version

),

joined as (

    select
        projects.project_id,
        coalesce(current_states.company_id, projects.first_company_id) as company_id,
        current_states.project_owner_user_id as owner_user_id,
        current_states.project_name,
        current_states.project_short_name,
        current_states.project_type,
        current_states.project_status,
        cast(coalesce(member_counts.member_count, 0) as {{ dbt.type_bigint() }})
            as member_count,
        coalesce(task_counts.task_count, 0) as task_count,
        coalesce(state_version_counts.state_version_count, 0)
            as state_version_count,
        current_states.project_estimated_hours as estimated_hours,
        current_states.project_id is null as is_inferred_member,
        false as is_unknown_member,
        current_states.project_start_date as start_date,
        current_states.project_end_date as end_date,
        projects.created_at,
        case
            when current_states.project_status = 'archived'
                then projects.last_archived_at
        end as archived_at,
        current_states.valid_from as state_valid_from,
        projects.first_activity_at,
        projects.last_activity_at
    from projects
    left join current_states
        on projects.project_id = current_states.project_id
    left join task_counts
        on projects.project_id = task_counts.project_id
    left join member_counts
        on projects.project_id = member_counts.project_id
    left join state_version_counts
        on projects.project_id = state_version_counts.project_id

),

unknown_member as (

    -- Target of every activity outside a project (logins, user administration).
    select
        cast(-1 as {{ dbt.type_bigint() }}) as project_id,
        cast(null as {{ dbt.type_bigint() }}) as company_id,
        cast(null as {{ dbt.type_bigint() }}) as owner_user_id,
        'No project' as project_name,
        cast(null as {{ dbt.type_string() }}) as project_short_name,
        cast(null as {{ dbt.type_string() }}) as project_type,
        cast(null as {{ dbt.type_string() }}) as project_status,
        cast(0 as {{ dbt.type_bigint() }}) as member_count,
        cast(0 as {{ dbt.type_bigint() }}) as task_count,
        cast(0 as {{ dbt.type_bigint() }}) as state_version_count,
        cast(null as {{ orangescrum.double_type() }}) as estimated_hours,
        false as is_inferred_member,
        true as is_unknown_member,
        cast(null as date) as start_date,
        cast(null as date) as end_date,
        cast(null as {{ dbt.type_timestamp() }}) as created_at,
        cast(null as {{ dbt.type_timestamp() }}) as archived_at,
        cast(null as {{ dbt.type_timestamp() }}) as state_valid_from,
        cast(null as {{ dbt.type_timestamp() }}) as first_activity_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_activity_at

),

final as (

    select * from joined
    union all
    select * from unknown_member

)

select * from final
