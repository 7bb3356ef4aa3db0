with

company_days as (

    select * from {{ ref('agg_daily_company_metrics') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

projects as (

    select * from {{ ref('dim_projects') }}

),

company_activity as (

    -- Every company (tenant) an event names: events carry no company attributes, so the
    -- dimension is its activity span and sizes. Folded from the company-days (a few rows
    -- per company), not from every event.
    select
        company_id,
        min(first_activity_at) as first_activity_at,
        max(last_activity_at) as last_activity_at
    from company_days
    group by company_id

),

user_counts as (

    select
        company_id,
        count(*) as user_count,
        sum(case when is_active then 1 else 0 end) as enabled_user_count
    from users
    where not is_unknown_member
    group by company_id

),

project_counts as (

    select
        company_id,
        count(*) as project_count
    from projects
    where not is_unknown_member
    group by company_id

),

final as (

    select
        cast(company_activity.company_id as {{ dbt.type_bigint() }}) as company_id,
        cast(coalesce(user_counts.user_count, 0) as {{ dbt.type_bigint() }}) as user_count,
        cast(
            coalesce(user_counts.enabled_user_count, 0) as {{ dbt.type_bigint() }}
        ) as enabled_user_count,
        cast(
            coalesce(project_counts.project_count, 0) as {{ dbt.type_bigint() }}
        ) as project_count,
        company_activity.first_activity_at,
        company_activity.last_activity_at
    from company_activity
    left join user_counts
        on company_activity.company_id = user_counts.company_id
    left join project_counts
        on company_activity.company_id = project_counts.company_id

)

select * from final
