{#
    dbt run-operation print_table_ddl --args '{model_name: fact_activities}'

    Logs the table DDL and the incremental overwrite predicate the adapter would run for a
    model, built by the adapter's own macros from the model's parsed config, without a
    warehouse connection. CI uses it on the BigQuery target offline to check partitioning
    and clustering (the compiled model is only the select; `dbt compile` writes that).
#}
{% macro print_table_ddl(model_name) %}
    {% set matches = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', model_name)
        | list %}
    {% if not matches %}
        {% do exceptions.raise_compiler_error("No model named '" ~ model_name ~ "'") %}
    {% endif %}
    {% set node = matches[0] %}
    {% set relation = api.Relation.create(
        database=node.database,
        schema=node.schema,
        identifier=node.alias
    ) %}
    {% set ddl = adapter.dispatch('table_ddl', 'orangescrum')(relation, node.config) %}
    {% do log('-- table DDL of ' ~ model_name ~ '\n' ~ ddl, info=true) %}
    {{ return(ddl) }}
{% endmacro %}


{% macro default__table_ddl(relation, model_config) %}
    {%- set ddl -%}
create or replace table {{ relation }} as (<compiled select>);
{%- if model_config.materialized == 'incremental' %}
-- incremental ({{ model_config.incremental_strategy }}): delete from {{ relation }}
-- where {{ model_config.unique_key }} in (<new rows>), then insert them
{%- endif %}
    {%- endset -%}
    {{ return(ddl) }}
{% endmacro %}


{% macro bigquery__table_ddl(relation, model_config) %}
    {%- set partition_config = adapter.parse_partition_by(model_config.partition_by) -%}
    {%- set ddl -%}
create or replace table {{ relation }}
{{ partition_by(partition_config) }}
{{ cluster_by(model_config.cluster_by) }}
as (<compiled select>);
{%- if model_config.materialized == 'incremental' and model_config.partitions %}
-- incremental ({{ model_config.incremental_strategy }}), static partitions:
merge into {{ relation }} as dbt_internal_dest
using (<compiled select>) as dbt_internal_source
on false
when not matched by source
    and {{ partition_config.render_wrapped(alias='dbt_internal_dest') }} in (
        {{ model_config.partitions | join(', ') }}
    )
    then delete
when not matched then insert row;
{%- endif %}
    {%- endset -%}
    {{ return(ddl) }}
{% endmacro %}
