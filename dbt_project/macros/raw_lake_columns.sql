{#
    Column lists of the lake's Parquet files (latest contract version: v2 added `client`),
    as (name, type) pairs in a neutral type
    vocabulary: string, int32, int64, float64, bool, date, timestamp, bytes, or a list of
    (name, type) pairs for a struct. They mirror orangescrum/core/contract/schema.py (event_arrow_schema,
    DEAD_LETTER_SCHEMA) and the metrics writer; raw_column_type() renders them per adapter.
    Used for BigQuery's external-table DDL and for DuckDB's empty stand-in views, so the raw
    relations are typed the same before and after the first file lands.
    Hive partition keys (event_date) are not listed: they live in folder names.
#}

{% macro raw_events_columns() %}
    {{ return([
        ('event_id', 'string'),
        ('event_type', 'string'),
        ('event_timestamp', 'timestamp'),
        ('company_id', 'int64'),
        ('user_id', 'int64'),
        ('project_id', 'int64'),
        ('task_id', 'int64'),
        ('client', 'string'),
        ('user_state', [
            ('user_id', 'int64'),
            ('name', 'string'),
            ('email', 'string'),
            ('role', 'string'),
            ('user_type', 'string'),
            ('is_active', 'bool'),
            ('timezone', 'string'),
            ('created_at', 'timestamp'),
        ]),
        ('project_state', [
            ('name', 'string'),
            ('short_name', 'string'),
            ('project_type', 'string'),
            ('status', 'string'),
            ('owner_user_id', 'int64'),
            ('start_date', 'date'),
            ('end_date', 'date'),
            ('estimated_hours', 'float64'),
        ]),
        ('task_state', [
            ('task_number', 'int32'),
            ('title', 'string'),
            ('task_type', 'string'),
            ('priority', 'string'),
            ('status', 'string'),
            ('legend', 'int32'),
            ('assignee_user_id', 'int64'),
            ('due_date', 'date'),
            ('estimated_hours', 'float64'),
            ('story_points', 'int32'),
            ('milestone_id', 'int64'),
        ]),
        ('time_log', [
            ('time_log_id', 'int64'),
            ('started_at', 'timestamp'),
            ('ended_at', 'timestamp'),
            ('duration_seconds', 'int64'),
            ('is_billable', 'bool'),
            ('approval_status', 'string'),
        ]),
        ('comment', [
            ('comment_id', 'int64'),
            ('body', 'string'),
        ]),
        ('milestone', [
            ('milestone_id', 'int64'),
            ('title', 'string'),
            ('due_date', 'date'),
        ]),
        ('attachment', [
            ('file_id', 'int64'),
            ('file_name', 'string'),
            ('size_bytes', 'int64'),
        ]),
        ('kafka_topic', 'string'),
        ('kafka_partition', 'int32'),
        ('kafka_offset', 'int64'),
        ('kafka_timestamp', 'timestamp'),
        ('schema_id', 'int32'),
        ('ingested_at', 'timestamp'),
    ]) }}
{% endmacro %}


{% macro raw_dead_letters_columns() %}
    {{ return([
        ('reason', 'string'),
        ('error_detail', 'string'),
        ('raw_key', 'bytes'),
        ('raw_value', 'bytes'),
        ('event_id', 'string'),
        ('schema_id', 'int32'),
        ('kafka_topic', 'string'),
        ('kafka_partition', 'int32'),
        ('kafka_offset', 'int64'),
        ('kafka_timestamp', 'timestamp'),
        ('ingested_at', 'timestamp'),
    ]) }}
{% endmacro %}


{% macro raw_pipeline_metrics_columns() %}
    {{ return([
        ('landing_id', 'string'),
        ('batch_id', 'int64'),
        ('started_at', 'timestamp'),
        ('finished_at', 'timestamp'),
        ('duration_seconds', 'float64'),
        ('rows_in', 'int64'),
        ('rows_landed', 'int64'),
        ('rows_dead_lettered', 'int64'),
        ('end_offsets', 'string'),
        ('lag_total', 'int64'),
    ]) }}
{% endmacro %}


{% macro raw_column_type(column_type) %}
    {{ return(adapter.dispatch('raw_column_type', 'orangescrum')(column_type)) }}
{% endmacro %}


{% macro default__raw_column_type(column_type) %}
    {#- DuckDB names; Parquet UTC-adjusted timestamps read as timestamp with time zone. -#}
    {% set names = {
        'string': 'varchar',
        'int32': 'integer',
        'int64': 'bigint',
        'float64': 'double',
        'bool': 'boolean',
        'date': 'date',
        'timestamp': 'timestamp with time zone',
        'bytes': 'blob',
    } %}
    {% if column_type is string %}
        {{ return(names[column_type]) }}
    {% endif %}
    {% set fields = [] %}
    {% for field_name, field_type in column_type %}
        {% do fields.append(
            field_name ~ ' ' ~ orangescrum.default__raw_column_type(field_type)
        ) %}
    {% endfor %}
    {{ return('struct(' ~ fields | join(', ') ~ ')') }}
{% endmacro %}


{% macro bigquery__raw_column_type(column_type) %}
    {% set names = {
        'string': 'string',
        'int32': 'int64',
        'int64': 'int64',
        'float64': 'float64',
        'bool': 'bool',
        'date': 'date',
        'timestamp': 'timestamp',
        'bytes': 'bytes',
    } %}
    {% if column_type is string %}
        {{ return(names[column_type]) }}
    {% endif %}
    {% set fields = [] %}
    {% for field_name, field_type in column_type %}
        {% do fields.append(
            field_name ~ ' ' ~ orangescrum.bigquery__raw_column_type(field_type)
        ) %}
    {% endfor %}
    {{ return('struct<' ~ fields | join(', ') ~ '>') }}
{% endmacro %}
