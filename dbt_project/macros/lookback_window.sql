{#
    The late-data lookback window of incremental models (stg_orangescrum__events,
    fact_activities, the daily models; the per-entity models update the entities with an
    event in it).

    Each incremental run reads the event dates [run_date - lookback_days, run_date]: the
    event-grain models append the events they do not hold yet (DuckDB, see below), the daily
    models delete and re-insert those days (unique_key = the model's date column); BigQuery
    overwrites exactly those daily partitions (static insert_overwrite: dynamic partition
    discovery failed on both BigQuery emulators tried). The model's filter and the partition
    list derive from the same two vars, so they cannot disagree.
#}

{% macro run_date() %}
    {#- SQL date expression for var('run_date'): a literal, or today's date (UTC). -#}
    {% set run_date = var('run_date', none) %}
    {% if run_date %}
        {{ return("cast('" ~ orangescrum.parse_run_date() ~ "' as date)") }}
    {% endif %}
    {{ return('current_date') }}
{% endmacro %}


{% macro parse_run_date() %}
    {#- var('run_date') as a validated YYYY-MM-DD string. -#}
    {% set raw_value = var('run_date') | string | trim %}
    {% set parsed_date = none %}
    {% if modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', raw_value) %}
        {% set parsed_date = modules.datetime.date.fromisoformat(raw_value) %}
    {% endif %}
    {% if parsed_date is none %}
        {% do exceptions.raise_compiler_error(
            "var run_date must be a YYYY-MM-DD date, got '" ~ raw_value ~ "'"
        ) %}
    {% endif %}
    {{ return(parsed_date.isoformat()) }}
{% endmacro %}


{% macro lookback_days() %}
    {% set days = var('lookback_days', 3) | int %}
    {% if days < 0 %}
        {% do exceptions.raise_compiler_error("var lookback_days must be >= 0") %}
    {% endif %}
    {{ return(days) }}
{% endmacro %}


{% macro lookback_window_start() %}
    {#- SQL date expression: the first day of the window, run_date - lookback_days. -#}
    {{ return(
        'cast(' ~ dbt.dateadd('day', -1 * orangescrum.lookback_days(), orangescrum.run_date())
        ~ ' as date)'
    ) }}
{% endmacro %}


{% macro lookback_window_start_at() %}
    {#- SQL timestamp expression: midnight (UTC) starting the window's first day. -#}
    {{ return(
        'cast(' ~ orangescrum.lookback_window_start() ~ ' as ' ~ dbt.type_timestamp() ~ ')'
    ) }}
{% endmacro %}


{% macro in_lookback_window(date_column) %}
    {#- Boolean SQL: date_column falls in [run_date - lookback_days, run_date]. -#}
    {{ return(
        date_column ~ ' between ' ~ orangescrum.lookback_window_start() ~ ' and '
        ~ orangescrum.run_date()
    ) }}
{% endmacro %}


{% macro from_lookback_window_start(date_column) %}
    {#- Boolean SQL: date_column is on or after the window's first day (later days included). -#}
    {{ return(date_column ~ ' >= ' ~ orangescrum.lookback_window_start()) }}
{% endmacro %}


{% macro daily_rollup_config(cluster_by) %}
    {#-
        The config() arguments of a model with one row per day and some keys, rebuilt whole
        days at a time: each incremental run recomputes the lookback window's days (DuckDB
        deletes and re-inserts those dates, BigQuery overwrites their daily partitions).
        Usage: {{ config(**orangescrum.daily_rollup_config(['company_id'])) }}
    -#}
    {{ return({
        'materialized': 'incremental',
        'unique_key': 'activity_date',
        'incremental_strategy': orangescrum.lookback_incremental_strategy(),
        'partition_by': orangescrum.daily_partition_by('activity_date', 'date'),
        'partitions': orangescrum.lookback_partitions('date'),
        'cluster_by': cluster_by,
        'on_schema_change': 'append_new_columns',
    }) }}
{% endmacro %}


{% macro lookback_incremental_strategy() %}
    {{ return(adapter.dispatch('lookback_incremental_strategy', 'orangescrum')()) }}
{% endmacro %}

{% macro default__lookback_incremental_strategy() %}
    {{ return('delete+insert') }}
{% endmacro %}

{% macro bigquery__lookback_incremental_strategy() %}
    {{ return('insert_overwrite') }}
{% endmacro %}


{#
    Event-grain models (stg_orangescrum__events, fact_activities): a row never changes once
    written (staging keeps an event's first delivery, and a redelivery lands later), so on
    DuckDB a run appends the window's events that are not in the table yet, instead of
    deleting and re-writing the whole window (4x the rows of a day, and their checkpoint).
    BigQuery overwrites the window's partitions whole, so there every row of them is kept.
#}

{% macro event_incremental_strategy() %}
    {{ return(adapter.dispatch('event_incremental_strategy', 'orangescrum')()) }}
{% endmacro %}

{% macro default__event_incremental_strategy() %}
    {{ return('append') }}
{% endmacro %}

{% macro bigquery__event_incremental_strategy() %}
    {{ return('insert_overwrite') }}
{% endmacro %}


{% macro not_written_yet(key_column, date_column) %}
    {#-
        Boolean SQL for an incremental run of an event-grain model: the row's key is not in
        the window's days of the model's table yet (always true on BigQuery, see above).
    -#}
    {{ return(adapter.dispatch('not_written_yet', 'orangescrum')(key_column, date_column)) }}
{% endmacro %}

{% macro default__not_written_yet(key_column, date_column) %}
    {#- `is not null`: one null key in the subquery would make `not in` reject every row. -#}
    {{ return(
        key_column ~ ' not in (select ' ~ key_column ~ ' from ' ~ this ~ ' where '
        ~ orangescrum.from_lookback_window_start(date_column) ~ ' and ' ~ key_column
        ~ ' is not null)'
    ) }}
{% endmacro %}

{% macro bigquery__not_written_yet(key_column, date_column) %}
    {{ return('true') }}
{% endmacro %}


{% macro daily_partition_by(column, data_type='timestamp') %}
    {#- partition_by config: BigQuery only (DuckDB tables are not partitioned). -#}
    {{ return(adapter.dispatch('daily_partition_by', 'orangescrum')(column, data_type)) }}
{% endmacro %}

{% macro default__daily_partition_by(column, data_type) %}
    {{ return(none) }}
{% endmacro %}

{% macro bigquery__daily_partition_by(column, data_type) %}
    {{ return({
        'field': column,
        'data_type': data_type,
        'granularity': 'day',
    }) }}
{% endmacro %}


{% macro lookback_partitions(data_type='timestamp') %}
    {#- Static `partitions` config for insert_overwrite: one per day of the window. -#}
    {{ return(adapter.dispatch('lookback_partitions', 'orangescrum')(data_type)) }}
{% endmacro %}

{% macro default__lookback_partitions(data_type) %}
    {{ return(none) }}
{% endmacro %}

{% macro bigquery__lookback_partitions(data_type) %}
    {#-
        Literals of the partition column's type: dbt compares them to the column itself
        (date) or to timestamp_trunc(column, day) (timestamp).
    -#}
    {% set partitions = [] %}
    {% for days_back in range(orangescrum.lookback_days() + 1) %}
        {% if var('run_date', none) %}
            {% set partition_date = modules.datetime.date.fromisoformat(
                orangescrum.parse_run_date()
            ) - modules.datetime.timedelta(days=days_back) %}
            {% do partitions.append(
                data_type ~ "('" ~ partition_date.isoformat() ~ "')"
            ) %}
        {% else %}
            {% do partitions.append(
                data_type ~ '(date_sub(current_date, interval ' ~ days_back ~ ' day))'
            ) %}
        {% endif %}
    {% endfor %}
    {{ return(partitions) }}
{% endmacro %}
