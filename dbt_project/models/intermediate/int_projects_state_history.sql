{#-
    The SCD 2 mechanics (versions, valid_from / valid_to, incremental continuation from the
    version open at the window start) are macros/state_history.sql; this model says which
    events are snapshots of a project and which attributes make a version.
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

{{ config(**orangescrum.state_history_config('project_id')) }}

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
        {{ project_state_columns | join(',\n        ') }}
    from events
    where
        project_id is not null
        and project_name is not null

),

{{ orangescrum.state_history_ctes('project_id', project_state_columns) }},

final as (

    select
        *,
        {{ orangescrum.loaded_at() }} as loaded_at
    from state_versions

)

select * from final
