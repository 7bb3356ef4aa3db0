{% macro calendar_bounds() %}
    {#-
        dim_dates' first and last day and the number of days between them, inclusive:
        var('calendar_start_date') (YYYY-MM-DD) to var('calendar_end_date'), which defaults
        to run_date (or today, UTC) plus var('calendar_years_ahead') years.
    -#}
    {% set start_date = orangescrum.parse_date_var('calendar_start_date') %}
    {% if var('calendar_end_date', none) %}
        {% set end_date = orangescrum.parse_date_var('calendar_end_date') %}
    {% else %}
        {% if var('run_date', none) %}
            {% set as_of = modules.datetime.date.fromisoformat(orangescrum.parse_run_date()) %}
        {% else %}
            {% set as_of = run_started_at.date() %}
        {% endif %}
        {% set years_ahead = var('calendar_years_ahead', 5) | int %}
        {#- 29 February + n years is 28 February when that year has no leap day. -#}
        {% set end_year = as_of.year + years_ahead %}
        {% set end_day = as_of.day if as_of.month != 2 or as_of.day != 29
            or (end_year % 4 == 0 and (end_year % 100 != 0 or end_year % 400 == 0))
            else 28 %}
        {% set end_date = as_of.replace(year=end_year, day=end_day) %}
    {% endif %}
    {% if end_date < start_date %}
        {% do exceptions.raise_compiler_error(
            "dim_dates would be empty: calendar_end_date " ~ end_date
            ~ " is before calendar_start_date " ~ start_date
        ) %}
    {% endif %}
    {{ return({
        'start_date': start_date.isoformat(),
        'end_date': end_date.isoformat(),
        'day_count': (end_date - start_date).days + 1
    }) }}
{% endmacro %}


{% macro parse_date_var(name) %}
    {#- var(name) as a date, or a compiler error naming the var and the bad value. -#}
    {% set raw_value = var(name) | string | trim %}
    {% if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', raw_value) %}
        {% do exceptions.raise_compiler_error(
            "var " ~ name ~ " must be a YYYY-MM-DD date, got '" ~ raw_value ~ "'"
        ) %}
    {% endif %}
    {{ return(modules.datetime.date.fromisoformat(raw_value)) }}
{% endmacro %}
