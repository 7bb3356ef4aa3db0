{{ config(**orangescrum.daily_rollup_config(['company_id', 'project_id'])) }}

with

-- An incremental run recomputes whole days of the lookback window (DuckDB deletes and
-- re-inserts those dates; BigQuery overwrites their partitions): every input is cut to
-- the same days, so each rebuilt day sees all of its events, closings and cycle times.
activities as (

    select * from {{ ref('fact_activities') }}
    {% if is_incremental() %}
        where {{ orangescrum.in_lookback_window('activity_date') }}
    {% endif %}

),

tasks_state_history as (

    select * from {{ ref('int_tasks_state_history') }}
    {% if is_incremental() %}
        where {{ orangescrum.in_lookback_window('cast(valid_from as date)') }}
    {% endif %}

),

tasks_cycle_times as (

    select * from {{ ref('int_tasks_cycle_times') }}
    {% if is_incremental() %}
        where {{ orangescrum.in_lookback_window('first_closed_date') }}
    {% endif %}

),

activity_metrics as (

    select
        activity_date,
        company_id,
        project_id,
        count(*) as event_count,
        count(distinct user_id) as active_user_count,
        count(
            distinct case when event_type = 'task_created' then task_id end
        ) as tasks_created_count,
        sum(
            case when event_type = 'task_commented' then 1 else 0 end
        ) as comment_count,
        sum(case when is_billable then logged_hours else 0 end)
            as billable_hours_logged,
        sum(case when not is_billable then logged_hours else 0 end)
            as non_billable_hours_logged
    from activities
    group by activity_date, company_id, project_id

),

task_closings as (

    select
        cast(valid_from as date) as activity_date,
        company_id,
        coalesce(project_id, -1) as project_id,
        count(distinct task_id) as tasks_closed_count
    from tasks_state_history
    where is_closing_transition
    group by cast(valid_from as date), company_id, coalesce(project_id, -1)

),

cycle_time_medians_by_task as (

    select
        first_closed_date as activity_date,
        first_closed_company_id as company_id,
        first_closed_project_id as project_id,
        {{ orangescrum.median_over(
            'cycle_time_hours',
            ['first_closed_date', 'first_closed_company_id', 'first_closed_project_id']
        ) }} as median_task_cycle_time_hours
    from tasks_cycle_times
    where cycle_time_hours is not null

),

cycle_time_medians as (

    select
        activity_date,
        company_id,
        project_id,
        max(median_task_cycle_time_hours) as median_task_cycle_time_hours
    from cycle_time_medians_by_task
    group by activity_date, company_id, project_id

),

metric_keys as (

    select
        activity_date,
        company_id,
        project_id
    from activity_metrics
    union distinct
    select
        activity_date,
        company_id,
        project_id
    from task_closings
    union distinct
    select
        activity_date,
        company_id,
        project_id
    from cycle_time_medians

),

joined as (

    select
        metric_keys.activity_date,
        metric_keys.company_id,
        metric_keys.project_id,
        coalesce(activity_metrics.event_count, 0) as event_count,
        coalesce(activity_metrics.active_user_count, 0) as active_user_count,
        coalesce(activity_metrics.tasks_created_count, 0) as tasks_created_count,
        coalesce(task_closings.tasks_closed_count, 0) as tasks_closed_count,
        coalesce(activity_metrics.comment_count, 0) as comment_count,
        coalesce(activity_metrics.billable_hours_logged, 0) as billable_hours_logged,
        coalesce(activity_metrics.non_billable_hours_logged, 0)
            as non_billable_hours_logged,
        cycle_time_medians.median_task_cycle_time_hours
    from metric_keys
    left join activity_metrics
        on
            metric_keys.activity_date = activity_metrics.activity_date
            and metric_keys.company_id = activity_metrics.company_id
            and metric_keys.project_id = activity_metrics.project_id
    left join task_closings
        on
            metric_keys.activity_date = task_closings.activity_date
            and metric_keys.company_id = task_closings.company_id
            and metric_keys.project_id = task_closings.project_id
    left join cycle_time_medians
        on
            metric_keys.activity_date = cycle_time_medians.activity_date
            and metric_keys.company_id = cycle_time_medians.company_id
            and metric_keys.project_id = cycle_time_medians.project_id

),

final as (

    select
        activity_date,
        company_id,
        project_id,
        cast(event_count as {{ dbt.type_bigint() }}) as event_count,
        cast(active_user_count as {{ dbt.type_bigint() }}) as active_user_count,
        cast(tasks_created_count as {{ dbt.type_bigint() }}) as tasks_created_count,
        cast(tasks_closed_count as {{ dbt.type_bigint() }}) as tasks_closed_count,
        cast(comment_count as {{ dbt.type_bigint() }}) as comment_count,
        cast(
            billable_hours_logged as {{ orangescrum.double_type() }}
        ) as billable_hours_logged,
        cast(
            non_billable_hours_logged as {{ orangescrum.double_type() }}
        ) as non_billable_hours_logged,
        cast(
            median_task_cycle_time_hours as {{ orangescrum.double_type() }}
        ) as median_task_cycle_time_hours,
        {{ orangescrum.loaded_at() }} as loaded_at
    from joined

)

select * from final
