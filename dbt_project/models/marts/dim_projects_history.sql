{#-
    The versions of int_projects_state_history that anyone could observe, for point-in-time
    joins. A version replaced by a later event at the same instant lasted no time: it is
    dropped, and the versions around it merge again when they are identical (the macro
    state_history_ctes, the one the state histories use, re-collapses them).

    Incremental (DuckDB): a run recomputes the projects whose state history changed since
    this table's latest load, each from all its versions; BigQuery rebuilds the table.
-#}

{{ config(**orangescrum.per_entity_config('project_id')) }}

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

with

projects_state_history as (

    select * from {{ ref('int_projects_state_history') }}
    where {{ orangescrum.changed_since_last_load(
        'project_id', [ref('int_projects_state_history')]
    ) }}

),

observable_versions as (

    select
        event_id,
        project_id,
        opened_by_event_type as event_type,
        valid_from as event_timestamp,
        {{ project_state_columns | join(',\n        ') }}
    from projects_state_history
    where
        valid_to is null
        or valid_to > valid_from

),

{{ orangescrum.state_history_ctes(
    'project_id',
    project_state_columns,
    snapshots_cte='observable_versions',
    continue_stored_versions=false
) }},

final as (

    select
        cast(project_id as {{ dbt.type_bigint() }}) as project_id,
        valid_from,
        valid_to,
        is_current_version as is_current,
        cast(version_number as {{ dbt.type_bigint() }}) as version_number,
        cast(company_id as {{ dbt.type_bigint() }}) as company_id,
        cast(project_owner_user_id as {{ dbt.type_bigint() }}) as owner_user_id,
        project_name,
        project_short_name,
        project_type,
        project_status,
        cast(project_estimated_hours as {{ orangescrum.double_type() }})
            as estimated_hours,
        cast(project_start_date as date) as start_date,
        cast(project_end_date as date) as end_date,
        event_id as opened_by_event_id,
        opened_by_event_type,
        {{ orangescrum.loaded_at() }} as loaded_at
    from state_versions

)

select * from final
