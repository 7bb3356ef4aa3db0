{#
    An incremental table, not a view like other staging models: deduplicating every event
    is the costliest step of the project and a dozen models and tests read the result. Each
    run reads the lookback window's lake partitions and writes the events it has not
    written yet (DuckDB appends them; BigQuery overwrites the window's daily partitions).
#}
{{
    config(
        materialized='incremental',
        incremental_strategy=orangescrum.event_incremental_strategy(),
        partition_by=orangescrum.daily_partition_by('event_timestamp'),
        partitions=orangescrum.lookback_partitions(),
        cluster_by=['event_type'],
        on_schema_change='append_new_columns'
    )
}}

{#-
    The raw rows this run reads: on an incremental run, the lookback window's lake
    partitions only (only their files are opened). A subquery, not a CTE: deduplicate()
    reads it more than once.
-#}
{%- set window_filter = (
    orangescrum.in_lookback_window('event_date') if is_incremental() else 'true'
) -%}
{%- set raw_events_in_scope = (
    '(select * from ' ~ source('orangescrum', 'raw_events') ~ ' where ' ~ window_filter ~ ')'
) %}

with

-- Kafka redeliveries and producer retries land an event_id more than once: keep the first
-- ingestion (then the lowest partition and offset, a stable tie-break). Duplicates of an
-- event share its event date, so deduplicating a window's partitions is complete.
first_deliveries as (

    {{ orangescrum.deduplicate(
        raw_events_in_scope,
        key='event_id',
        order_by='ingested_at asc, kafka_partition asc, kafka_offset asc'
    ) }}

),

renamed as (

    select

        ----------  ids
        event_id,
        cast(company_id as {{ dbt.type_bigint() }}) as company_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(project_id as {{ dbt.type_bigint() }}) as project_id,
        cast(task_id as {{ dbt.type_bigint() }}) as task_id,
        cast(user_state.user_id as {{ dbt.type_bigint() }}) as subject_user_id,
        cast(
            project_state.owner_user_id as {{ dbt.type_bigint() }}
        ) as project_owner_user_id,
        cast(
            task_state.assignee_user_id as {{ dbt.type_bigint() }}
        ) as task_assignee_user_id,
        cast(task_state.milestone_id as {{ dbt.type_bigint() }}) as task_milestone_id,
        cast(time_log.time_log_id as {{ dbt.type_bigint() }}) as time_log_id,
        cast(comment.comment_id as {{ dbt.type_bigint() }}) as comment_id,
        cast(milestone.milestone_id as {{ dbt.type_bigint() }}) as milestone_id,
        cast(attachment.file_id as {{ dbt.type_bigint() }}) as file_id,

        ----------  strings (noqa AL09: struct fields keep their name, not self-aliases)
        event_type,
        {{ orangescrum.event_category('event_type') }} as event_category,
        client as client_channel,
        {{ orangescrum.name_initials('user_state.name') }} as user_initials,
        {{ orangescrum.hash_email('user_state.email') }} as user_email_hash,
        user_state.role as user_role,
        user_state.user_type as user_type,  -- noqa: AL09
        user_state.timezone as user_timezone,
        project_state.name as project_name,
        project_state.short_name as project_short_name,
        project_state.project_type as project_type,  -- noqa: AL09
        project_state.status as project_status,
        task_state.title as task_title,
        task_state.task_type as task_type,  -- noqa: AL09
        task_state.priority as task_priority,
        task_state.status as task_status,
        time_log.approval_status as time_log_approval_status,
        comment.body as comment_body,
        milestone.title as milestone_title,
        attachment.file_name as file_name,  -- noqa: AL09
        kafka_topic,

        ----------  numerics
        cast(task_state.task_number as {{ dbt.type_bigint() }}) as task_number,
        cast(task_state.legend as {{ dbt.type_bigint() }}) as task_status_legend,
        cast(task_state.story_points as {{ dbt.type_bigint() }}) as task_story_points,
        cast(
            task_state.estimated_hours as {{ orangescrum.double_type() }}
        ) as task_estimated_hours,
        cast(
            project_state.estimated_hours as {{ orangescrum.double_type() }}
        ) as project_estimated_hours,
        cast(
            time_log.duration_seconds as {{ dbt.type_bigint() }}
        ) as time_log_duration_seconds,
        cast(attachment.size_bytes as {{ dbt.type_bigint() }}) as file_size_bytes,
        cast(kafka_partition as {{ dbt.type_bigint() }}) as kafka_partition,
        cast(kafka_offset as {{ dbt.type_bigint() }}) as kafka_offset,
        cast(schema_id as {{ dbt.type_bigint() }}) as schema_id,

        ----------  booleans
        user_state.is_active as is_user_active,
        time_log.is_billable as is_time_log_billable,

        ----------  dates
        cast(event_timestamp as date) as activity_date,
        project_state.start_date as project_start_date,
        project_state.end_date as project_end_date,
        task_state.due_date as task_due_date,
        milestone.due_date as milestone_due_date,
        event_date as lake_partition_date,

        ----------  timestamps
        cast(event_timestamp as {{ dbt.type_timestamp() }}) as event_timestamp,
        cast(user_state.created_at as {{ dbt.type_timestamp() }}) as user_created_at,
        cast(
            time_log.started_at as {{ dbt.type_timestamp() }}
        ) as time_log_started_at,
        cast(time_log.ended_at as {{ dbt.type_timestamp() }}) as time_log_ended_at,
        cast(kafka_timestamp as {{ dbt.type_timestamp() }}) as kafka_message_at,
        cast(ingested_at as {{ dbt.type_timestamp() }}) as ingested_at,
        {{ orangescrum.loaded_at() }} as loaded_at

    from first_deliveries
    {% if is_incremental() %}
        where {{ orangescrum.not_written_yet('event_id', 'lake_partition_date') }}
    {% endif %}

)

select * from renamed
