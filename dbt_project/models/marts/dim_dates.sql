{#-
    A fixed calendar, independent of the facts: [calendar_start_date, calendar_end_date]
    (vars; the end defaults to run_date + calendar_years_ahead years). The bounds are
    constants computed here, so the day count is exact (no cap) and is handed to dbt-core's
    own generate_series (the series dbt.date_spine builds on; date_spine itself asks the
    warehouse for the count while compiling, which the offline BigQuery compile and the
    sqlfluff templater cannot do).
-#}
{%- set bounds = orangescrum.calendar_bounds() -%}

with

generated_numbers as (

    {{ dbt.generate_series(bounds.day_count) }}

),

day_offsets as (

    -- generate_series counts from 1; BigQuery's version computes it as a float (power()).
    select cast(generated_number as {{ dbt.type_bigint() }}) - 1 as day_offset
    from generated_numbers

),

date_spine as (

    select
        cast(
            {{ dbt.dateadd(
                'day', 'day_offset', "cast('" ~ bounds.start_date ~ "' as date)"
            ) }} as date
        ) as date_day
    from day_offsets

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
