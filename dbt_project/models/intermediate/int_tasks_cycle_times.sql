{#-
    Incremental runs (DuckDB) read the events and history versions from the lookback
    window's start on, and keep what earlier events settled: a stored first event, creation
    or first close before the window start cannot change, since no event before it is
    re-read (and int_tasks_state_history rewrites every version from the window start on).
-#}
{%- set window_start = orangescrum.lookback_window_start_at() -%}

{{ config(**orangescrum.per_entity_config('task_id')) }}

with

events as (

    select * from {{ ref('stg_orangescrum__events') }}
    {% if is_incremental() %}
        where {{ orangescrum.from_lookback_window_start('activity_date') }}
    {% endif %}

),

tasks_state_history as (

    select * from {{ ref('int_tasks_state_history') }}
    {% if is_incremental() %}
        where valid_from >= {{ window_start }}
    {% endif %}

),

tasks as (

    select
        task_id,
        min(event_timestamp) as first_event_at
    from events
    where task_id is not null
    group by task_id

),

task_creations as (

    select
        task_id,
        min(event_timestamp) as created_at
    from events
    where
        event_type = 'task_created'
        and task_id is not null
    group by task_id

),

ranked_closings as (

    select
        task_id,
        coalesce(project_id, -1) as project_id,
        company_id,
        valid_from as closed_at,
        row_number() over (
            partition by task_id
            order by valid_from, event_id
        ) as closing_rank
    from tasks_state_history
    where is_closing_transition

),

first_closings as (

    select * from ranked_closings
    where closing_rank = 1

),

joined as (

    select
        tasks.task_id,
        tasks.first_event_at,
        task_creations.created_at,
        first_closings.closed_at as first_closed_at,
        first_closings.company_id as first_closed_company_id,
        first_closings.project_id as first_closed_project_id,
        cast(first_closings.closed_at as date) as first_closed_date
    from tasks
    left join task_creations
        on tasks.task_id = task_creations.task_id
    left join first_closings
        on tasks.task_id = first_closings.task_id

),

{% if is_incremental() %}

    previous_cycle_times as (

        select * from {{ this }}
        where task_id in (select task_id from tasks)

    ),

    continued as (

        -- A stored value stays when the event that settled it is before the window start.
        select
            joined.task_id,
            {% for column, settled_at in [
                ('first_event_at', 'first_event_at'),
                ('created_at', 'created_at'),
                ('first_closed_at', 'first_closed_at'),
                ('first_closed_company_id', 'first_closed_at'),
                ('first_closed_project_id', 'first_closed_at'),
                ('first_closed_date', 'first_closed_at'),
            ] -%}
                case
                    when previous_cycle_times.{{ settled_at }} < {{ window_start }}
                        then previous_cycle_times.{{ column }}
                    else joined.{{ column }}
                end as {{ column }}{{ ',' if not loop.last }}
            {% endfor %}
        from joined
        left join previous_cycle_times
            on joined.task_id = previous_cycle_times.task_id

    ),

{% endif %}

final as (

    select
        *,
        -- Only when both ends were observed: a task created before the lake's history
        -- starts has no trustworthy cycle time.
        cast(
            {{ dbt.datediff('created_at', 'first_closed_at', 'second') }}
            as {{ orangescrum.double_type() }}
        ) / 3600 as cycle_time_hours,
        {{ orangescrum.loaded_at() }} as loaded_at
    {% if is_incremental() %}
        from continued
    {% else %}
        from joined
    {% endif %}

)

select * from final
