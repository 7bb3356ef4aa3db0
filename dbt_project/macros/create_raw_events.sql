{#
    dbt run-operation create_raw_events

    Exposes the lake's Parquet files to the warehouse as three relations in the target schema
    (orangescrum_dw), which the sources in models/staging/_orangescrum__sources.yml read:

        raw_events            {lake_raw_events}/event_date=YYYY-MM-DD/*.parquet
                              (+ {lake_processed_events}/event_date=YYYY-MM-DD/*.parquet)
        raw_dead_letters      {lake_dead_letters}/event_date=YYYY-MM-DD/*.parquet
        raw_pipeline_metrics  {lake_metrics}/*.parquet

    Each zone is a var the project's lake layout fills (orangescrum.core.lake.LakeLayout,
    through ORANGESCRUM_LAKE_<ZONE>); a zone left unset falls back to its usual folder
    under var('lake_root'), so dbt also runs on its own with only the root.

    DuckDB: views over read_parquet (a local folder, or gs:// through gcsfs, which the dev
    profile registers on DuckDB when the lake root is gs://),
    typed by the column lists in raw_lake_columns.sql.
    BigQuery, var raw_relations = 'external' (default): hive-partitioned external tables
    over gs://, one per lake zone (raw_events__raw over raw/events, raw_events__processed
    over processed/events), and raw_events, a view unioning them. Idempotent (create or
    replace); run it before `dbt build`, and again after the first files land if it ran on
    an empty lake (the empty stand-in is a fixed, typed relation).
    --args '{read_processed: true|false}': whether raw_events also reads processed/events
    (compacted days, which outlive their raw files once maintenance archives those).
    Default: DuckDB reads it when it has files (it can list them); BigQuery cannot list
    GCS from SQL and an external table over no file fails every query, so it reads it only
    when told. `orangescrum warehouse load` (and the Airflow ingest DAG) lists the zone and
    passes the answer.
    BigQuery, var raw_relations = 'native': managed tables with the same columns plus
    `event_date`, partitioned by day on `event_date` (= DATE(event_timestamp), UTC) and
    raw_events clustered by user_id, event_type; created only if missing, never emptied.
    A load job fills them (`bq load --source_format=PARQUET --hive_partitioning_mode=CUSTOM`
    into `raw_events$YYYYMMDD` replaces one day); a BigQuery emulator, which reads no gs://,
    gets its rows by INSERT (orangescrum/bq_emulator.py, tests/dbt).
    --args '{dry_run: true}' only logs the DDL (CI checks the BigQuery DDL offline that way).
#}

{% macro create_raw_events(dry_run=false, read_processed=none) %}
    {% if not dry_run %}
        {% do adapter.create_schema(
            api.Relation.create(database=target.database, schema=target.schema)
        ) %}
    {% endif %}
    {% do orangescrum.create_raw_relation(
        'raw_events',
        orangescrum.lake_zone('lake_raw_events', 'raw/events'),
        orangescrum.raw_events_columns(),
        'event_date',
        dry_run,
        cluster_by=['user_id', 'event_type'],
        also_read=[orangescrum.lake_zone('lake_processed_events', 'processed/events')],
        also_read_has_files=read_processed
    ) %}
    {% do orangescrum.create_raw_relation(
        'raw_dead_letters',
        orangescrum.lake_zone('lake_dead_letters', 'raw/_dead_letter'),
        orangescrum.raw_dead_letters_columns(),
        'event_date',
        dry_run
    ) %}
    {% do orangescrum.create_raw_relation(
        'raw_pipeline_metrics',
        orangescrum.lake_zone('lake_metrics', 'raw/metrics'),
        orangescrum.raw_pipeline_metrics_columns(),
        none,
        dry_run
    ) %}
{% endmacro %}


{% macro lake_zone(zone_var, folder_under_root) %}
    {#-
        A lake zone's location: var(zone_var) when set (the lake layout passes every zone),
        else {lake_root}/{folder_under_root}. Without scheme noise or trailing slash.
    -#}
    {% set zone = (var(zone_var, '') or '') | trim %}
    {% if not zone %}
        {% set zone = orangescrum.lake_root() ~ '/' ~ folder_under_root %}
    {% endif %}
    {{ return(orangescrum.strip_file_scheme(zone)) }}
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
    {{ return(orangescrum.strip_file_scheme(lake_root)) }}
{% endmacro %}


{% macro strip_file_scheme(location) %}
    {% if location.startswith('file://') %}
        {% set location = location[7:] %}
    {% endif %}
    {{ return(location.rstrip('/')) }}
{% endmacro %}


{% macro create_raw_relation(
    name, location, columns, partition_column, dry_run=false, cluster_by=none, also_read=none,
    also_read_has_files=none
) %}
    {#-
        name: relation name in the target schema.
        location: lake folder holding the files.
        columns: [(name, type)] as returned by raw_events_columns() and friends.
        partition_column: Hive partition key (a DATE folder name), or none.
        cluster_by: columns a native BigQuery table is clustered by, or none.
        also_read: more lake folders of the same layout (processed/events: compacted days,
            which outlive their raw files once maintenance archives those). Staging
            deduplicates by event_id, so a day present in both zones counts once.
        also_read_has_files: whether those folders hold files, when the caller knows: true,
            false (they are left out), or none = unknown (DuckDB globs to find out; BigQuery
            leaves them out). Either way the relation keeps its shape (on BigQuery, a view
            over one external table per zone), so a later run can add a zone in place.
    -#}
    {% set relation = api.Relation.create(
        database=target.database,
        schema=target.schema,
        identifier=name
    ) %}
    {% set create_sql = adapter.dispatch('raw_relation_sql', 'orangescrum')(
        relation, location, columns, partition_column, cluster_by, also_read or [],
        also_read_has_files
    ) %}
    {% if dry_run %}
        {% do log("-- create_raw_events (dry run)\n" ~ create_sql, info=true) %}
    {% else %}
        {% do run_query(create_sql) %}
    {% endif %}
{% endmacro %}


{% macro default__raw_relation_sql(
    relation, location, columns, partition_column, cluster_by=none, also_read=[],
    also_read_has_files=none
) %}
    {#- DuckDB: a view over read_parquet, empty but typed while no file exists. -#}
    {% set quoted_globs = [] %}
    {% set file_count = namespace(total=0) %}
    {% set file_glob = location ~ ('/' ~ partition_column ~ '=*' if partition_column else '')
        ~ '/*.parquet' %}
    {% for folder in [location] + (also_read if also_read_has_files != false else []) %}
        {% if partition_column %}
            {% set folder_glob = folder ~ '/' ~ partition_column ~ '=*/*.parquet' %}
        {% else %}
            {% set folder_glob = folder ~ '/*.parquet' %}
        {% endif %}
        {% set quoted = "'" ~ (folder_glob | replace("'", "''")) ~ "'" %}
        {% set folder_files = run_query(
            'select count(*) from glob(' ~ quoted ~ ')'
        ).columns[0].values()[0] %}
        {#- read_parquet fails on a pattern that matches nothing: list only folders with files. -#}
        {% if folder_files > 0 %}
            {% do quoted_globs.append(quoted) %}
            {% set file_count.total = file_count.total + folder_files %}
        {% endif %}
    {% endfor %}
    {% set file_count = file_count.total %}
    {% set quoted_glob = '[' ~ quoted_globs | join(', ') ~ ']' %}

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


{% macro raw_relations_mode() %}
    {#- var('raw_relations'): 'external' (tables over the lake's files) or 'native'. -#}
    {% set mode = (var('raw_relations', 'external') or 'external') | string | trim | lower %}
    {% if mode not in ['external', 'native'] %}
        {% do exceptions.raise_compiler_error(
            "var raw_relations must be 'external' or 'native', got '" ~ mode ~ "'"
        ) %}
    {% endif %}
    {{ return(mode) }}
{% endmacro %}


{% macro bigquery__raw_relation_sql(
    relation, location, columns, partition_column, cluster_by=none, also_read=[],
    also_read_has_files=none
) %}
    {% if orangescrum.raw_relations_mode() == 'native' %}
        {#- Load jobs fill the native table from any zone; nothing to union. -#}
        {{ return(orangescrum.bigquery__native_raw_table_sql(
            relation, location, columns, partition_column, cluster_by
        )) }}
    {% endif %}
    {% if not also_read %}
        {{ return(orangescrum.bigquery__external_table_sql(
            relation, location, columns, partition_column
        )) }}
    {% endif %}
    {#-
        An external table has one hive prefix, so each zone gets its own
        (<relation>__<zone>, zone = the folder above `events`) and the relation becomes a
        view unioning them.
    -#}
    {% set zone_locations = [location] %}
    {% if also_read_has_files %}
        {% set zone_locations = [location] + also_read %}
    {% else %}
        {% do log(
            "create_raw_events: " ~ relation ~ " does not read " ~ also_read | join(', ')
            ~ " (BigQuery cannot list GCS: pass --args '{read_processed: true}' once it "
            ~ "holds files, as `orangescrum warehouse load` does)",
            info=true
        ) %}
    {% endif %}
    {% set statements = [] %}
    {% set zone_relations = [] %}
    {% for zone_location in zone_locations %}
        {% set zone_relation = relation.incorporate(path={
            'identifier': relation.identifier ~ '__' ~ zone_location.rstrip('/').split('/')[-2]
        }) %}
        {% do zone_relations.append(zone_relation) %}
        {% do statements.append(orangescrum.bigquery__external_table_sql(
            zone_relation, zone_location, columns, partition_column
        )) %}
    {% endfor %}
    {% set view_sql %}
        create or replace view {{ relation }} as
        {% for zone_relation in zone_relations -%}
        select * from {{ zone_relation }}
        {% if not loop.last %}union all{% endif %}
        {% endfor -%}
    {% endset %}
    {% do statements.append(view_sql) %}
    {{ return(statements | join(';\n')) }}
{% endmacro %}


{% macro bigquery__external_table_sql(relation, location, columns, partition_column) %}
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


{% macro bigquery__native_raw_table_sql(
    relation, location, columns, partition_column, cluster_by
) %}
    {#-
        BigQuery: a managed table a load job fills. `if not exists`: re-running the
        operation keeps the loaded rows. The Hive key becomes a real DATE column and the
        daily partitioning, so a load into `table$YYYYMMDD` replaces exactly one lake day.
    -#}
    {% set create_sql %}
        create table if not exists {{ relation }} (
            {% for column_name, column_type in columns -%}
            {{ column_name }} {{ orangescrum.raw_column_type(column_type) }}
            {%- if partition_column or not loop.last %},{% endif %}
            {% endfor -%}
            {% if partition_column -%}
            {{ partition_column }} date
            {%- endif %}
        )
        {% if partition_column -%}
        partition by {{ partition_column }}
        {% endif -%}
        {% if cluster_by -%}
        cluster by {{ cluster_by | join(', ') }}
        {% endif -%}
    {% endset %}
    {% do log(
        "create_raw_events: " ~ relation ~ " is a native table (load " ~ location
        ~ " into it)",
        info=true
    ) %}
    {{ return(create_sql) }}
{% endmacro %}
