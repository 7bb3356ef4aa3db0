{#
    Root-project override of dbt-duckdb's contract DDL (duckdb__get_table_columns_and_constraints,
    dispatched from dbt's get_table_columns_and_constraints).

    The same columns, types and constraints, except that an incremental model's primary key is
    not declared on DuckDB. DuckDB enforces a primary key with an index that every commit of a
    delete must update: it was most of dim_tasks_history's time in a one-day build on 10M
    events (bench/dbt_scale.py --slowest, dbt's log), a cost that grows with the table, not
    with the rows rewritten; without the key the same commit is almost free. Each such key
    is checked by the model's primary_key (or unique + not_null) data test instead: on its
    latest load in a daily run, on every row with --vars '{test_scope: all}' (the nightly
    DAG). Tables rebuilt from scratch keep their declared key, and BigQuery gets every
    declared key (unenforced there, used by its optimiser) through dbt's own macro.
#}
{% macro duckdb__get_table_columns_and_constraints() %}
    {%- if config.get('materialized') != 'incremental' -%}
        {{ return(table_columns_and_constraints()) }}
    {%- endif -%}
    {%- set columns = {} -%}
    {%- for name, column in model['columns'].items() -%}
        {%- set column_without_key = column.copy() -%}
        {%- do column_without_key.update({
            'constraints': column.get('constraints', [])
                | rejectattr('type', 'equalto', 'primary_key') | list
        }) -%}
        {%- do columns.update({name: column_without_key}) -%}
    {%- endfor -%}
    {%- set raw_column_constraints = adapter.render_raw_columns_constraints(raw_columns=columns) -%}
    {%- set raw_model_constraints = adapter.render_raw_model_constraints(
        raw_constraints=model['constraints'] | rejectattr('type', 'equalto', 'primary_key') | list
    ) -%}
    (
    {% for c in raw_column_constraints -%}
        {{ c }}{{ "," if not loop.last or raw_model_constraints }}
    {% endfor %}
    {% for c in raw_model_constraints -%}
        {{ c }}{{ "," if not loop.last }}
    {% endfor -%}
    )
{% endmacro %}
