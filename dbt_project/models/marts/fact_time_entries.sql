{#
    One row per time entry: its hours and where its approval stands now; the latest
    decision (approve or reject) wins, so an entry approved then rejected counts as
    rejected, never as approved. Incremental (DuckDB): a run recomputes the entries with an
    event staged since this table's latest load, each from all its events; BigQuery
    rebuilds the table.
#}

{{ config(**orangescrum.per_entity_config('time_log_id')) }}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    where
        time_log_id is not null
        and {{ orangescrum.changed_since_last_load(
            'time_log_id', [ref('stg_orangescrum__events')]
        ) }}

),

creations as (

    select
        time_log_id,
        event_id,
        user_id,
        company_id,
        coalesce(project_id, -1) as project_id,
        task_id,
        is_time_log_billable as is_billable,
        time_log_started_at as started_at,
        time_log_ended_at as ended_at,
        cast(time_log_duration_seconds as {{ orangescrum.double_type() }}) / 3600
            as logged_hours,
        event_timestamp as logged_at,
        activity_date as logged_date,
        row_number() over (
            partition by time_log_id order by event_timestamp, event_id
        ) as creation_rank
    from events
    where event_type in ('time_logged', 'timer_stopped')

),

decisions as (

    select
        time_log_id,
        case
            when event_type = 'time_entry_approved' then 'approved' else 'rejected'
        end as decision,
        user_id as decided_by_user_id,
        event_timestamp as decided_at,
        row_number() over (
            partition by time_log_id order by event_timestamp desc, event_id desc
        ) as recency_rank
    from events
    where event_type in ('time_entry_approved', 'time_entry_rejected')

),

entries as (

    select
        creations.time_log_id,
        creations.user_id,
        creations.company_id,
        creations.project_id,
        creations.task_id,
        creations.logged_date,
        creations.logged_at,
        creations.started_at,
        creations.ended_at,
        creations.logged_hours,
        creations.is_billable,
        coalesce(decisions.decision, 'pending') as approval_status,
        decisions.decided_at,
        decisions.decided_by_user_id
    from creations
    left join decisions
        on
            creations.time_log_id = decisions.time_log_id
            and decisions.recency_rank = 1
    where creations.creation_rank = 1

),

final as (

    select
        cast(time_log_id as {{ dbt.type_bigint() }}) as time_log_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(company_id as {{ dbt.type_bigint() }}) as company_id,
        cast(project_id as {{ dbt.type_bigint() }}) as project_id,
        cast(task_id as {{ dbt.type_bigint() }}) as task_id,
        logged_date,
        logged_at,
        started_at,
        ended_at,
        logged_hours,
        is_billable,
        approval_status,
        decided_at,
        cast(decided_by_user_id as {{ dbt.type_bigint() }}) as decided_by_user_id,
        case when approval_status = 'approved' then logged_hours else 0 end
            as approved_hours,
        case when approval_status = 'rejected' then logged_hours else 0 end
            as rejected_hours,
        case when approval_status = 'pending' then logged_hours else 0 end
            as pending_hours,
        {{ orangescrum.loaded_at() }} as loaded_at
    from entries

)

select * from final
