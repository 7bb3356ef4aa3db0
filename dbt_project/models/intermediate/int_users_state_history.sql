{#-
    The SCD 2 mechanics (versions, valid_from / valid_to, incremental continuation from the
    version open at the window start) are macros/state_history.sql; this model says which
    events are snapshots of a user and which attributes make a version.
-#}
{%- set user_state_columns = [
    'company_id',
    'user_initials',
    'user_email_hash',
    'user_role',
    'user_type',
    'is_user_active',
    'user_timezone',
    'user_created_at',
] -%}

{{ config(**orangescrum.state_history_config('user_id')) }}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        where {{ orangescrum.from_lookback_window_start('activity_date') }}
    {% endif %}

),

new_snapshots as (

    -- Every event with a user payload is a snapshot of that user right after the event.
    select
        event_id,
        subject_user_id as user_id,
        event_type,
        event_timestamp,
        {{ user_state_columns | join(',\n        ') }}
    from events
    where subject_user_id is not null

),

{{ orangescrum.state_history_ctes('user_id', user_state_columns) }},

final as (

    select
        *,
        {{ orangescrum.loaded_at() }} as loaded_at
    from state_versions

)

select * from final
