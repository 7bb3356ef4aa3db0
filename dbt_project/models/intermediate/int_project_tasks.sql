{#
    Which tasks each project has had, for dim_projects' task count (a distinct count does
    not add up over days). Incremental (DuckDB): a run re-inserts the pairs seen in the
    lookback window; pairs seen before stay. BigQuery rebuilds the table.
#}
{{ config(**orangescrum.per_entity_config(['project_id', 'task_id'])) }}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        where {{ orangescrum.in_lookback_window('activity_date') }}
    {% endif %}

),

project_tasks as (

    select distinct
        project_id,
        task_id
    from events
    where
        project_id is not null
        and task_id is not null

),

final as (

    select
        *,
        {{ orangescrum.loaded_at() }} as loaded_at
    from project_tasks

)

select * from final
