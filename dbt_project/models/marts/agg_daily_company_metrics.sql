{{ config(**orangescrum.daily_rollup_config(['company_id'])) }}

with

-- Like agg_daily_metrics, an incremental run recomputes the lookback window's whole days,
-- so each rebuilt day counts its users over all of its events.
activities as (

    select * from {{ ref('fact_activities') }}
    {% if is_incremental() %}
        where {{ orangescrum.in_lookback_window('activity_date') }}
    {% endif %}

),

company_days as (

    select
        activity_date,
        company_id,
        count(*) as event_count,
        -- the unknown member (-1) is nobody in particular: it is not an active user
        count(
            distinct case when user_id <> -1 then user_id end
        ) as active_user_count,
        count(
            distinct case when project_id <> -1 then project_id end
        ) as active_project_count,
        min(event_timestamp) as first_activity_at,
        max(event_timestamp) as last_activity_at
    from activities
    group by activity_date, company_id

),

final as (

    select
        activity_date,
        company_id,
        cast(event_count as {{ dbt.type_bigint() }}) as event_count,
        cast(active_user_count as {{ dbt.type_bigint() }}) as active_user_count,
        cast(active_project_count as {{ dbt.type_bigint() }}) as active_project_count,
        first_activity_at,
        last_activity_at,
        {{ orangescrum.loaded_at() }} as loaded_at
    from company_days

)

select * from final
