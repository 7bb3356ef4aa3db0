{#
    Each incremental run reads the lookback window's days of staging, so late events land
    in their own day: DuckDB appends the events it has not written yet, BigQuery overwrites
    the window's daily partitions.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=orangescrum.event_incremental_strategy(),
        partition_by=orangescrum.daily_partition_by('event_timestamp'),
        partitions=orangescrum.lookback_partitions(),
        cluster_by=['user_id', 'event_type'],
        on_schema_change='append_new_columns'
    )
}}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        -- The whole lookback window, so late events land in their own day.
        where
            {{ orangescrum.in_lookback_window('activity_date') }}
            and {{ orangescrum.not_written_yet('event_id', 'activity_date') }}
    {% endif %}

),

activities as (

    select
        event_id,
        event_type,
        event_category,
        client_channel,
        company_id,
        user_id,
        -- Events outside any project point at the dimension's unknown member.
        coalesce(project_id, -1) as project_id,
        task_id,
        subject_user_id,
        time_log_id,
        comment_id,
        milestone_id,
        file_id,
        task_status,
        time_log_approval_status,
        case
            when event_type in ('timer_stopped', 'time_logged')
                then cast(time_log_duration_seconds as {{ orangescrum.double_type() }})
                    / 3600
        end as logged_hours,
        is_time_log_billable as is_billable,
        activity_date,
        event_timestamp,
        ingested_at,
        {{ dbt.datediff('event_timestamp', 'ingested_at', 'second') }}
            as ingestion_delay_seconds,
        cast(ingested_at as date) > activity_date as is_late_arrival,
        {{ orangescrum.loaded_at() }} as loaded_at
    from events

)

select * from activities
