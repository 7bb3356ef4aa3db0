-- fact_activities holds exactly the distinct event_ids of raw_events: none missing (a
-- load or a dedup bug, or an event later than the lookback window: run
-- `dbt build --full-refresh --select stg_orangescrum__events+`), none extra. Facts older than
-- the oldest event still in raw_events are not compared: the lake's retention may have
-- archived their files, while the incremental fact keeps them.
--
-- Like the generic tests of incremental models (macros/incremental_loads.sql), it compares
-- a range of days, not everything: from the first day of the fact's latest load (or the
-- earliest day of any raw event ingested since then, which catches events later than the
-- window) to its last day. `--vars '{test_scope: all}'` compares every day.
{% set day_range = namespace(first=none, last=none) %}
{#- Only when the test runs: compile (also offline, without a warehouse) renders the full scope. -#}
{% if execute and flags.WHICH in ['build', 'test', 'retry']
    and orangescrum.test_scope() == 'latest_load' %}
    {% set latest_load_days = run_query(
        'select min(activity_date), max(activity_date) from ' ~ ref('fact_activities')
        ~ ' where loaded_at = (select max(loaded_at) from ' ~ ref('fact_activities') ~ ')'
    ).rows[0] %}
    {% if latest_load_days[0] is not none %}
        {#- Statistics on ingested_at skip the row groups of older files. -#}
        {% set late_days = run_query(
            'select min(event_date) from ' ~ source('orangescrum', 'raw_events')
            ~ " where ingested_at >= cast('" ~ latest_load_days[0] ~ "' as "
            ~ dbt.type_timestamp() ~ ")"
            ~ " and event_date < cast('" ~ latest_load_days[0] ~ "' as date)"
        ).rows[0] %}
        {% set day_range.first = late_days[0] or latest_load_days[0] %}
        {% set day_range.last = latest_load_days[1] %}
    {% endif %}
{% endif %}

with

latest_load as (

    -- The lake keeps filling while a build runs (a continuous stream): only events that
    -- reached the lake a settling margin before the fact's latest load began are compared,
    -- on both sides; later ones are the next run's to check.
    select
        {{ dbt.dateadd(
            'second',
            -1 * (var('reconciliation_settle_seconds', 60) | int),
            'max(loaded_at)'
        ) }} as ingested_before
    from {{ ref('fact_activities') }}

),

raw_events_in_scope as (

    select
        raw_events.event_id,
        raw_events.event_timestamp
    from {{ source('orangescrum', 'raw_events') }} as raw_events
    cross join latest_load
    where
        raw_events.ingested_at < latest_load.ingested_before
        {% if day_range.first is not none %}
            -- The lake partition column: only the range's files are read.
            and raw_events.event_date between cast('{{ day_range.first }}' as date)
            and cast('{{ day_range.last }}' as date)
        {% endif %}

),

fact_event_ids_in_scope as (

    select
        fact_activities.event_id,
        fact_activities.activity_date
    from {{ ref('fact_activities') }} as fact_activities
    cross join latest_load
    where
        fact_activities.ingested_at < latest_load.ingested_before
        {% if day_range.first is not none %}
            and fact_activities.activity_date between cast('{{ day_range.first }}' as date)
            and cast('{{ day_range.last }}' as date)
        {% endif %}

),

raw_event_ids as (

    select
        event_id,
        min(cast(event_timestamp as date)) as activity_date
    from raw_events_in_scope
    group by event_id

),

raw_coverage as (

    select min(activity_date) as first_raw_date from raw_event_ids

),

missing_from_fact as (

    select
        raw_event_ids.event_id,
        raw_event_ids.activity_date,
        'missing from fact_activities' as failure_reason
    from raw_event_ids
    left join fact_event_ids_in_scope
        on raw_event_ids.event_id = fact_event_ids_in_scope.event_id
    where fact_event_ids_in_scope.event_id is null

),

not_in_raw as (

    select
        fact_event_ids_in_scope.event_id,
        fact_event_ids_in_scope.activity_date,
        'not in raw_events' as failure_reason
    from fact_event_ids_in_scope
    cross join raw_coverage
    left join raw_event_ids
        on fact_event_ids_in_scope.event_id = raw_event_ids.event_id
    where
        raw_event_ids.event_id is null
        and fact_event_ids_in_scope.activity_date >= raw_coverage.first_raw_date

)

select * from missing_from_fact
union all
select * from not_in_raw
