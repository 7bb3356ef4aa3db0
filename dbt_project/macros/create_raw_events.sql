{#
    dbt run-operation create_raw_events

    Exposes the lake's Parquet files to the warehouse as three relations in the target schema
    (orangescrum_dw), which the sources in models/staging/_orangescrum__sources.yml read:

        raw_events            {lake_root}/raw/events/event_date=YYYY-MM-DD/*.parquet
        raw_dead_letters      {lake_root}/raw/_dead_letter/event_date=YYYY-MM-DD/*.parquet
        raw_pipeline_metrics  {lake_root}/raw/metrics/*.parquet

    DuckDB: views over read_parquet (a local folder, or gs:// through DuckDB's httpfs),
    typed by the column lists in raw_lake_columns.sql.
    BigQuery: hive-partitioned external tables over gs://.
    Idempotent (create or replace); run it before `dbt build`, and again after the first
    files land if it ran on an empty lake (the empty stand-in is a fixed, typed relation).
    --args '{dry_run: true}' only logs the DDL (CI checks the BigQuery DDL offline that way).
#}

{% macro create_raw_events(dry_run=false) %}
    {% set lake_root = orangescrum.lake_root() %}
    {% if not dry_run %}
        {% do adapter.create_schema(
            api.Relation.create(database=target.database, schema=target.schema)
        ) %}
    {% endif %}
    {% do orangescrum.create_raw_relation(
        'raw_events',
        lake_root ~ '/raw/events',
        orangescrum.raw_events_columns(),
        'event_date',
        dry_run
    ) %}
    {% do orangescrum.create_raw_relation(
        'raw_dead_letters',
        lake_root ~ '/raw/_dead_letter',
        orangescrum.raw_dead_letters_columns(),
        'event_date',
        dry_run
    ) %}
    {% do orangescrum.create_raw_relation(
        'raw_pipeline_metrics',
        lake_root ~ '/raw/metrics',
        orangescrum.raw_pipeline_metrics_columns(),
        none,
        dry_run
    ) %}
{% endmacro %}


{% macro lake_root() %}
    {#- The lake root from var('lake_root') without scheme noise or trailing slash. -#}
    {% set lake_root = (var('lake_root', '') or '') | trim %}
    {% if not lake_root %}
        {% do exceptions.raise_compiler_error(
            "No lake root: set ORANGESCRUM_LAKE_ROOT (a folder or gs://bucket/prefix) "
            ~ "or pass --vars '{lake_root: ...}' to create_raw_events."
        ) %}
    {% endif %}
    {% if lake_root.startswith('file://') %}
        {% set lake_root = lake_root[7:] %}
    {% endif %}
    {{ return(lake_root.rstrip('/')) }}
{% endmacro %}


{% macro create_raw_relation(name, location, columns, partition_column, dry_run=false) %}
    {#-
        name: relation name in the target schema.
        location: lake folder holding the files.
        columns: [(name, type)] as returned by raw_events_columns() and friends.
        partition_column: Hive partition key (a DATE folder name), or none.
    -#}
    {% set relation = api.Relation.create(
        database=target.database,
        schema=target.schema,
        identifier=name
    ) %}
    {% set create_sql = adapter.dispatch('raw_relation_sql', 'orangescrum')(
        relation, location, columns, partition_column
    ) %}
    {% if dry_run %}
        {% do log("-- create_raw_events (dry run)\n" ~ create_sql, info=true) %}
    {% else %}
        {% do run_query(create_sql) %}
    {% endif %}
{% endmacro %}


{% macro default__raw_relation_sql(relation, location, columns, partition_column) %}
    {#- DuckDB: a view over read_parquet, empty but typed while no file exists. -#}
    {% if partition_column %}
        {% set file_glob = location ~ '/' ~ partition_column ~ '=*/*.parquet' %}
    {% else %}
        {% set file_glob = location ~ '/*.parquet' %}
    {% endif %}
    {% set quoted_glob = "'" ~ (file_glob | replace("'", "''")) ~ "'" %}
    {% set file_count = run_query(
        'select count(*) from glob(' ~ quoted_glob ~ ')'
    ).columns[0].values()[0] %}

    {#-
        The typed stand-in always comes first and the files are unioned into it by name:
        the view keeps every contract column (null where older files lack it, e.g. v1 files
        have no `client`) plus any column newer files add, and exists before any file does.
    -#}
    {% set typed_columns_sql %}
        select
            {% for column_name, column_type in columns -%}
            cast(null as {{ orangescrum.raw_column_type(column_type) }}) as {{ column_name }}
            {%- if partition_column or not loop.last %},{% endif %}
            {% endfor -%}
            {% if partition_column -%}
            cast(null as date) as {{ partition_column }}
            {%- endif %}
        where false
    {% endset %}
    {% set create_sql %}
        create or replace view {{ relation }} as
        {{ typed_columns_sql }}
        {%- if file_count > 0 %}
        union all by name
        select *
        from read_parquet(
            {{ quoted_glob }},
            union_by_name = true,
            hive_partitioning = {{ 'true' if partition_column else 'false' }}
            {%- if partition_column %},
            hive_types = {'{{ partition_column }}': 'date'}
            {%- endif %}
        )
        {%- endif %}
    {% endset %}
    {% if file_count > 0 %}
        {% do log(
            "create_raw_events: " ~ relation ~ " reads " ~ file_count ~ " file(s) under "
            ~ location,
            info=true
        ) %}
    {% else %}
        {% do log(
            "create_raw_events: no file matches " ~ file_glob ~ "; " ~ relation
            ~ " is empty (typed) until files land. Run it again then.",
            info=true
        ) %}
    {% endif %}
    {{ return(create_sql) }}
{% endmacro %}


{% macro bigquery__raw_relation_sql(relation, location, columns, partition_column) %}
    {#- BigQuery: a (hive-partitioned) external table over the Parquet files on GCS. -#}
    {% if not location.startswith('gs://') %}
        {% do exceptions.raise_compiler_error(
            "BigQuery reads the lake from GCS, got lake root '" ~ location
            ~ "': set ORANGESCRUM_LAKE_URI to gs://bucket/prefix."
        ) %}
    {% endif %}
    {#- One wildcard per URI; it spans folders, so it also matches event_date=*/ files. -#}
    {% set create_sql %}
        create or replace external table {{ relation }} (
            {% for column_name, column_type in columns -%}
            {{ column_name }} {{ orangescrum.raw_column_type(column_type) }}
            {%- if not loop.last %},{% endif %}
            {% endfor -%}
        )
        {% if partition_column -%}
        with partition columns ({{ partition_column }} date)
        {% endif -%}
        options (
            format = 'PARQUET',
            uris = ['{{ location }}/*.parquet']
            {%- if partition_column %},
            hive_partition_uri_prefix = '{{ location }}',
            require_hive_partition_filter = false
            {%- endif %}
        )
    {% endset %}
    {% do log("create_raw_events: " ~ relation ~ " reads " ~ location, info=true) %}
    {{ return(create_sql) }}
{% endmacro %}
