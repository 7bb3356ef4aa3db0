{#
    What dim_projects aggregates, pre-aggregated per day: each incremental run recomputes
    the lookback window's days (as agg_daily_metrics does), so the dimension folds a few rows
    per project instead of re-reading every event.
#}
{{ config(**orangescrum.daily_rollup_config(['project_id'])) }}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        where {{ orangescrum.in_lookback_window('activity_date') }}
    {% endif %}

),

project_days as (

    -- Every project an event points at, with or without a project payload.
    select
        activity_date,
        project_id,
        min(company_id) as first_company_id,
        min(event_timestamp) as first_activity_at,
        max(event_timestamp) as last_activity_at,
        min(
            case when event_type = 'project_created' then event_timestamp end
        ) as created_at,
        max(
            case when event_type = 'project_archived' then event_timestamp end
        ) as last_archived_at,
        {{ orangescrum.loaded_at() }} as loaded_at
    from events
    where project_id is not null
    group by activity_date, project_id

)

select * from project_days
