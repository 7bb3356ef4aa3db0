{#- 10^4 day offsets (27 years): more than the lake's history will ever span. -#}
with

activities as (

    select * from {{ ref('fact_activities') }}

),

bounds as (

    select
        min(activity_date) as first_date,
        max(activity_date) as last_date
    from activities

),

digits as (

    select 0 as digit
    union all
    select 1 as digit
    union all
    select 2 as digit
    union all
    select 3 as digit
    union all
    select 4 as digit
    union all
    select 5 as digit
    union all
    select 6 as digit
    union all
    select 7 as digit
    union all
    select 8 as digit
    union all
    select 9 as digit

),

day_offsets as (

    select
        units.digit
        + tens.digit * 10
        + hundreds.digit * 100
        + thousands.digit * 1000 as day_offset
    from digits as units
    cross join digits as tens
    cross join digits as hundreds
    cross join digits as thousands

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
