{#-
    Incremental runs (DuckDB) read the window's events only and continue each user's
    history from its version open at the window start (macros/state_history.sql).
-#}
{%- set user_state_columns = [
    'company_id',
    'user_name',
    'user_email',
    'user_role',
    'user_type',
    'is_user_active',
    'user_timezone',
    'user_created_at',
] -%}

{{
    config(
        materialized=orangescrum.per_entity_materialization(),
        unique_key='user_id',
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

    -- Every event with a user payload is a snapshot of that user right after the event.
    select
        event_id,
        subject_user_id as user_id,
        event_type,
        event_timestamp,
        {% for column in user_state_columns -%}
            {{ column }},
        {% endfor -%}
        cast(null as {{ dbt.type_bigint() }}) as continued_version_number
    from events
    where subject_user_id is not null

),

{% if is_incremental() %}

    versions_open_at_window_start as (

        -- The stored version each user with a new snapshot was in when the window began:
        -- its history continues from there.
        select
            event_id,
            user_id,
            opened_by_event_type as event_type,
            valid_from as event_timestamp,
            {% for column in user_state_columns -%}
                {{ column }},
            {% endfor -%}
            version_number as continued_version_number
        from {{ this }}
        where
            {{ orangescrum.version_open_at_window_start() }}
            and user_id in (select user_id from new_snapshots)

    ),

{% endif %}

user_snapshots as (

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
            user_state_columns,
            partition_by='user_id',
            order_by='event_timestamp, event_id'
        ) }} as is_new_version
    from user_snapshots

),

versions as (

    select
        event_id,
        user_id,
        event_type as opened_by_event_type,
        {% for column in user_state_columns -%}
            {{ column }},
        {% endfor -%}
        event_timestamp as valid_from,
        {{ orangescrum.version_number(
            partition_by='user_id',
            order_by='event_timestamp, event_id'
        ) }} as version_number,
        lead(event_timestamp) over (
            partition by user_id
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
