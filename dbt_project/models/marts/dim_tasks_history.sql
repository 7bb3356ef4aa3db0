{#-
    The versions of int_tasks_state_history that anyone could observe, for point-in-time
    joins. A version replaced by a later event at the same instant lasted no time: it is
    dropped, and the versions around it merge again when they are identical (the macro
    state_history_ctes, the one the state histories use, re-collapses them); the previous
    status is then the one of the previous version here.

    Incremental (DuckDB): int_tasks_state_history's runs rewrite each touched task's latest
    versions, so the versions it wrote since this table's latest load are, per task, the
    ones from some instant on. A run recomputes each such task from its version here that
    was open at that instant (continuing its number and previous status) plus those new
    versions, and replaces the task's versions from there on (incremental strategy
    replace_versions_from): a one-day run re-reads the days it touched, not every version of
    every task it touched. BigQuery rebuilds the table.
-#}

{%- set model_config = orangescrum.per_entity_config('task_id') -%}
{%- do model_config.update({'incremental_strategy': 'replace_versions_from'}) -%}
{{ config(**model_config) }}

{%- set task_state_columns = [
    'project_id',
    'company_id',
    'task_number',
    'task_title',
    'task_type',
    'task_priority',
    'task_status',
    'task_status_legend',
    'task_assignee_user_id',
    'task_due_date',
    'task_estimated_hours',
    'task_story_points',
    'task_milestone_id',
] -%}

with

tasks_state_history as (

    select * from {{ ref('int_tasks_state_history') }}

),

{% if is_incremental() %}
stored_versions as (

    select * from {{ this }}

),

recomputed_tasks as (

    -- Each task with versions written since this table's latest load, and the instant the
    -- first of them begins: its versions here are recomputed from there on. (Not read
    -- through the CTEs above: DuckDB materialises a CTE read twice, here a whole table.)
    select
        task_id,
        min(valid_from) as recompute_from
    from {{ ref('int_tasks_state_history') }}
    where loaded_at > {{ orangescrum.latest_load_at(this) }}
    group by task_id

),

continued_versions as (

    -- The stored version each recomputed task was in at that instant (none for a new
    -- task), in the shape state_history_ctes continues from.
    select
        stored_versions.opened_by_event_id as event_id,
        stored_versions.task_id,
        stored_versions.changed_by_user_id,
        stored_versions.opened_by_event_type as event_type,
        stored_versions.valid_from as event_timestamp,
        -- the only state column this table stores differently (no project: -1)
        nullif(stored_versions.project_id, -1) as project_id,
        {% for column in task_state_columns if column != 'project_id' -%}
            stored_versions.{{ column }},
        {% endfor -%}
        stored_versions.previous_task_status as continued_previous_task_status,
        stored_versions.version_number as continued_version_number
    from stored_versions
    inner join recomputed_tasks
        on stored_versions.task_id = recomputed_tasks.task_id
    where
        stored_versions.valid_from < recomputed_tasks.recompute_from
        and (
            stored_versions.valid_to is null
            or stored_versions.valid_to >= recomputed_tasks.recompute_from
        )

),
{% endif %}

versions_to_collapse as (

    select tasks_state_history.*
    from tasks_state_history
    {% if is_incremental() %}
        inner join recomputed_tasks
            on
                tasks_state_history.task_id = recomputed_tasks.task_id
                and tasks_state_history.valid_from >= recomputed_tasks.recompute_from
    {% endif %}

),

observable_versions as (

    select
        event_id,
        task_id,
        changed_by_user_id,
        opened_by_event_type as event_type,
        valid_from as event_timestamp,
        {{ task_state_columns | join(',\n        ') }}
    from versions_to_collapse
    where
        valid_to is null
        or valid_to > valid_from

),

{{ orangescrum.state_history_ctes(
    'task_id',
    task_state_columns,
    carried_columns=['changed_by_user_id'],
    previous_value_columns={'task_status': dbt.type_string()},
    snapshots_cte='observable_versions',
    continued_versions_cte='continued_versions'
) }},

final as (

    select
        cast(task_id as {{ dbt.type_bigint() }}) as task_id,
        valid_from,
        valid_to,
        is_current_version as is_current,
        cast(version_number as {{ dbt.type_bigint() }}) as version_number,
        cast(company_id as {{ dbt.type_bigint() }}) as company_id,
        cast(coalesce(project_id, -1) as {{ dbt.type_bigint() }}) as project_id,
        cast(task_number as {{ dbt.type_bigint() }}) as task_number,
        task_title,
        task_type,
        task_priority,
        task_status,
        previous_task_status,
        cast(task_status_legend as {{ dbt.type_bigint() }}) as task_status_legend,
        cast(task_assignee_user_id as {{ dbt.type_bigint() }}) as task_assignee_user_id,
        cast(task_milestone_id as {{ dbt.type_bigint() }}) as task_milestone_id,
        cast(task_due_date as date) as task_due_date,
        cast(task_estimated_hours as {{ orangescrum.double_type() }})
            as task_estimated_hours,
        cast(task_story_points as {{ dbt.type_bigint() }}) as task_story_points,
        cast(changed_by_user_id as {{ dbt.type_bigint() }}) as changed_by_user_id,
        event_id as opened_by_event_id,
        opened_by_event_type,
        {{ orangescrum.loaded_at() }} as loaded_at
    from state_versions

)

select * from final
