-- The versions of one entity in each history mart (dim_users_history, dim_projects_history,
-- dim_tasks_history) tile time: ordered by valid_from, each ends exactly where the next one
-- begins (no overlap, no gap), lasts some time, and only the last is open (valid_to null,
-- is_current). A point-in-time join then finds at most one version. One row per offending
-- version. ((entity id, valid_from) is unique: each mart's primary_key test.) Like the generic
-- tests, it checks the entities of each mart's latest load unless test_scope is all: an
-- incremental run rewrites every version of the entities it recomputes.
with

users_history as (

    select * from {{ ref('dim_users_history') }}
    where {{ orangescrum.in_latest_load('user_id', ref('dim_users_history')) }}

),

projects_history as (

    select * from {{ ref('dim_projects_history') }}
    where {{ orangescrum.in_latest_load('project_id', ref('dim_projects_history')) }}

),

tasks_history as (

    select * from {{ ref('dim_tasks_history') }}
    where {{ orangescrum.in_latest_load('task_id', ref('dim_tasks_history')) }}

),

versions as (

    select
        'dim_users_history' as history_model,
        user_id as entity_id,
        valid_from,
        valid_to,
        is_current
    from users_history
    union all
    select
        'dim_projects_history' as history_model,
        project_id as entity_id,
        valid_from,
        valid_to,
        is_current
    from projects_history
    union all
    select
        'dim_tasks_history' as history_model,
        task_id as entity_id,
        valid_from,
        valid_to,
        is_current
    from tasks_history

),

with_next_version as (

    select
        *,
        lead(valid_from) over (
            partition by history_model, entity_id
            order by valid_from
        ) as next_valid_from
    from versions

),

checked as (

    select
        history_model,
        entity_id,
        valid_from,
        valid_to,
        next_valid_from,
        case
            when valid_to <= valid_from then 'ends before it starts'
            when valid_to is null and next_valid_from is not null
                then 'open although a later version exists'
            when next_valid_from is null and valid_to is not null
                then 'the last version is closed'
            when valid_to > next_valid_from then 'overlaps the next version'
            when valid_to < next_valid_from then 'gap before the next version'
            when is_current is null or is_current != (valid_to is null)
                then 'is_current disagrees with valid_to'
        end as failure_reason
    from with_next_version

),

final as (

    select * from checked
    where failure_reason is not null

)

select * from final
