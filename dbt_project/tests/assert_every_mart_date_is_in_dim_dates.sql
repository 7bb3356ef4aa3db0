-- Every date column of every mart falls inside dim_dates' range (a contiguous calendar, so
-- comparing each column's min and max is enough). A row here names the column and its
-- dates outside: widen the calendar with the vars calendar_start_date / calendar_end_date /
-- calendar_years_ahead (dbt_project.yml).
{% set date_columns = [
    ('fact_activities', 'activity_date'),
    ('agg_daily_metrics', 'activity_date'),
    ('agg_daily_company_metrics', 'activity_date'),
    ('fact_time_entries', 'logged_date'),
    ('dim_projects', 'start_date'),
    ('dim_projects', 'end_date'),
    ('dim_tasks', 'task_due_date'),
] %}

with

calendar_range as (

    select
        min(date_day) as first_day,
        max(date_day) as last_day
    from {{ ref('dim_dates') }}

),

column_ranges as (

    {% for mart, column in date_columns %}
        select
            '{{ mart }}.{{ column }}' as mart_column,
            min({{ column }}) as first_date,
            max({{ column }}) as last_date
        from {{ ref(mart) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select
    column_ranges.mart_column,
    column_ranges.first_date,
    column_ranges.last_date,
    calendar_range.first_day as calendar_first_day,
    calendar_range.last_day as calendar_last_day
from column_ranges
cross join calendar_range
where
    column_ranges.first_date < calendar_range.first_day
    or column_ranges.last_date > calendar_range.last_day
