{#
    A select of the rows of `relation` keeping one per `key` (one column): the first by
    `order_by`. Like dbt_utils.deduplicate; `relation` is a table name or a parenthesised
    subquery (not a CTE name: the DuckDB version reads it more than once, and DuckDB would
    materialise a CTE read more than once). Every version adds a column `key_rank` (1).
    The key is expected not null (DuckDB keeps every null-key row, the default one of them).
#}
{% macro deduplicate(relation, key, order_by) %}
    {{ return(adapter.dispatch('deduplicate', 'orangescrum')(relation, key, order_by)) }}
{% endmacro %}

{% macro default__deduplicate(relation, key, order_by) %}
    {#- One ranking window over every row: what a distributed engine (BigQuery) does well. -#}
    select * from (
        select
            candidate_rows.*,
            row_number() over (
                partition by {{ key }} order by {{ order_by }}
            ) as key_rank
        from {{ relation }} as candidate_rows
    ) as ranked_rows
    where key_rank = 1
{% endmacro %}

{% macro duckdb__deduplicate(relation, key, order_by) %}
    {#-
        Duplicates are rare (Kafka redeliveries: ~1%), so they are found on the key column
        alone and only their rows are ranked (by the default version); the rest stream
        through in scan order. Ranking every row sorted all of them with all their columns:
        twice the time at 10M events (bench/dbt_scale.py), and the table lost the lake's day
        order, which keeps each day's rows in few row groups for the incremental runs.
    -#}
    with duplicated_keys as (
        select {{ key }}
        from {{ relation }} as candidate_rows
        group by {{ key }}
        having count(*) > 1
    )

    select
        single_rows.*,
        1 as key_rank
    from {{ relation }} as single_rows
    where not exists (
        select 1 from duplicated_keys
        where duplicated_keys.{{ key }} = single_rows.{{ key }}
    )
    union all
    {{ orangescrum.default__deduplicate(
        '(select * from ' ~ relation ~ ' as duplicated_rows where exists ('
        ~ 'select 1 from duplicated_keys where duplicated_keys.' ~ key
        ~ ' = duplicated_rows.' ~ key ~ '))',
        key,
        order_by
    ) }}
{% endmacro %}
