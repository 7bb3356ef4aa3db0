{#-
    The versions of int_users_state_history that anyone could observe, for point-in-time
    joins. A version replaced by a later event at the same instant lasted no time: it is
    dropped, and the versions around it merge again when they are identical (the macro
    state_history_ctes, the one the state histories use, re-collapses them).

    Incremental (DuckDB): a run recomputes the users whose state history changed since
    this table's latest load, each from all its versions; BigQuery rebuilds the table.
-#}

{{ config(**orangescrum.per_entity_config('user_id')) }}

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

with

users_state_history as (

    select * from {{ ref('int_users_state_history') }}
    where {{ orangescrum.changed_since_last_load(
        'user_id', [ref('int_users_state_history')]
    ) }}

),

observable_versions as (

    select
        event_id,
        user_id,
        opened_by_event_type as event_type,
        valid_from as event_timestamp,
        {{ user_state_columns | join(',\n        ') }}
    from users_state_history
    where
        valid_to is null
        or valid_to > valid_from

),

{{ orangescrum.state_history_ctes(
    'user_id',
    user_state_columns,
    snapshots_cte='observable_versions',
    continue_stored_versions=false
) }},

final as (

    select
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        valid_from,
        valid_to,
        is_current_version as is_current,
        cast(version_number as {{ dbt.type_bigint() }}) as version_number,
        cast(company_id as {{ dbt.type_bigint() }}) as company_id,
        user_initials,
        user_email_hash,
        user_role,
        user_type,
        user_timezone,
        is_user_active as is_active,
        user_created_at,
        event_id as opened_by_event_id,
        opened_by_event_type,
        {{ orangescrum.loaded_at() }} as loaded_at
    from state_versions

)

select * from final
