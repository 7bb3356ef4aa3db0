{#-
    Incremental runs (DuckDB) read the window's events only and continue each project's
    history from its version open at the window start (macros/state_history.sql).
-#}
{%- set project_state_columns = [
    'company_id',
    'project_name',
    'project_short_name',
    'project_type',
    'project_status',
    'project_owner_user_id',
    'project_start_date',
    'project_end_date',
    'project_estimated_hours',
] -%}

{{
    config(
        materialized=orangescrum.per_entity_materialization(),
        unique_key='project_id',
        incremental_strategy='delete+insert',
        incremental_predicates=[orangescrum.version_reaches_lookback_window()],
        on_schema_change='append_new_columns'
    )
}}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        where {{ orangescrum.from_lookback_window_start('activity_date') }}
    {% endif %}

),

new_snapshots as (

    -- Every event with a project payload is a snapshot of the project right after it.
    select
        event_id,
        project_id,
        event_type,
        event_timestamp,
        {% for column in project_state_columns -%}
            {{ column }},
        {% endfor -%}
        cast(null as {{ dbt.type_bigint() }}) as continued_version_number
    from events
    where
        project_id is not null
        and project_name is not null

),

{% if is_incremental() %}

    versions_open_at_window_start as (

        -- The stored version each project with a new snapshot was in when the window
        -- began: its history continues from there.
        select
            event_id,
            project_id,
            opened_by_event_type as event_type,
            valid_from as event_timestamp,
            {% for column in project_state_columns -%}
                {{ column }},
            {% endfor -%}
            version_number as continued_version_number
        from {{ this }}
        where
            {{ orangescrum.version_open_at_window_start() }}
            and project_id in (select project_id from new_snapshots)

    ),

{% endif %}

project_snapshots as (

    select * from new_snapshots
    {% if is_incremental() %}
        union all
        select * from versions_open_at_window_start
    {% endif %}

),

flagged_snapshots as (

    select
        *,
        {{ orangescrum.opens_new_version(
            project_state_columns,
            partition_by='project_id',
            order_by='event_timestamp, event_id'
        ) }} as is_new_version
    from project_snapshots

),

versions as (

    select
        event_id,
        project_id,
        event_type as opened_by_event_type,
        {% for column in project_state_columns -%}
            {{ column }},
        {% endfor -%}
        event_timestamp as valid_from,
        {{ orangescrum.version_number(
            partition_by='project_id',
            order_by='event_timestamp, event_id'
        ) }} as version_number,
        lead(event_timestamp) over (
            partition by project_id
            order by event_timestamp, event_id
        ) as valid_to
    from flagged_snapshots
    where is_new_version

),

final as (

    select
        *,
        valid_to is null as is_current_version,
        {{ orangescrum.loaded_at() }} as loaded_at
    from versions

)

select * from final
