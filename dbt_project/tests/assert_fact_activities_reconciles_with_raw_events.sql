-- fact_activities holds exactly the distinct event_ids of raw_events: none missing (a
-- load or a dedup bug, or an event later than the lookback window: run
-- `dbt build --full-refresh --select fact_activities+`), none extra. Facts older than
-- the oldest event still in raw_events are not compared: the lake's retention may have
-- archived their files, while the incremental fact keeps them.
with

raw_event_ids as (

    select
        event_id,
        min(cast(event_timestamp as date)) as activity_date
    from {{ source('orangescrum', 'raw_events') }}
    group by event_id

),

fact_event_ids as (

    select
        event_id,
        activity_date
    from {{ ref('fact_activities') }}

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
    left join fact_event_ids
        on raw_event_ids.event_id = fact_event_ids.event_id
    where fact_event_ids.event_id is null

),

not_in_raw as (

    select
        fact_event_ids.event_id,
        fact_event_ids.activity_date,
        'not in raw_events' as failure_reason
    from fact_event_ids
    cross join raw_coverage
    left join raw_event_ids
        on fact_event_ids.event_id = raw_event_ids.event_id
    where
        raw_event_ids.event_id is null
        and fact_event_ids.activity_date >= raw_coverage.first_raw_date

)

select * from missing_from_fact
union all
select * from not_in_raw
