{#-
    The day offsets come from dbt-core's own generate_series (global project, no package):
    DuckDB's native generate_series, elsewhere dbt's powers-of-two cross join. Not
    dbt.date_spine: it asks the warehouse for the number of days (get_intervals_between) while
    compiling, which an offline compile of the BigQuery target (--no-introspect) and the
    sqlfluff templater cannot do, and it needs constant bounds, not the fact's min / max.
    10^4 offsets (27 years): more than the lake's history will ever span.
-#}
{%- set max_days = 10000 -%}

with

activities as (

    select * from {{ ref('fact_activities') }}

),

generated_numbers as (

    {{ dbt.generate_series(max_days) }}

),

bounds as (

    select
        min(activity_date) as first_date,
        max(activity_date) as last_date
    from activities

),

day_offsets as (

    -- generate_series counts from 1; BigQuery's version computes it as a float (power()).
    select cast(generated_number as {{ dbt.type_bigint() }}) - 1 as day_offset
    from generated_numbers

),

date_spine as (

    select
        cast(
            {{ dbt.dateadd('day', 'day_offsets.day_offset', 'bounds.first_date') }}
            as date
        ) as date_day
    from bounds
    cross join day_offsets
    where
        day_offsets.day_offset
        <= {{ dbt.datediff('bounds.first_date', 'bounds.last_date', 'day') }}

),

calendar as (

    select
        date_day,
        cast(extract(year from date_day) as {{ dbt.type_bigint() }}) as year_number,
        cast(
            extract(quarter from date_day) as {{ dbt.type_bigint() }}
        ) as quarter_number,
        cast(extract(month from date_day) as {{ dbt.type_bigint() }}) as month_number,
        cast(
            extract(day from date_day) as {{ dbt.type_bigint() }}
        ) as day_of_month_number,
        cast(
            extract(dayofyear from date_day) as {{ dbt.type_bigint() }}
        ) as day_of_year_number,
        cast(
            extract(isoyear from date_day) as {{ dbt.type_bigint() }}
        ) as iso_year_number,
        cast(
            {{ orangescrum.iso_week_of_year('date_day') }} as {{ dbt.type_bigint() }}
        ) as iso_week_number,
        cast(
            {{ orangescrum.iso_day_of_week('date_day') }} as {{ dbt.type_bigint() }}
        ) as iso_day_of_week_number,
        cast(
            {{ dbt.date_trunc('month', 'date_day') }} as date
        ) as month_start_date,
        cast(
            {{ dbt.dateadd(
                'day',
                '1 - ' ~ orangescrum.iso_day_of_week('date_day'),
                'date_day'
            ) }} as date
        ) as iso_week_start_date,
        {{ orangescrum.iso_day_of_week('date_day') }} in (6, 7) as is_weekend,
        {{ orangescrum.iso_day_of_week('date_day') }} not in (6, 7) as is_weekday
    from date_spine

)

select * from calendar
