{#
    Root-project override of dbt's relationships test SQL (default__test_relationships).

    The same rows fail: child values with no equal parent value. dbt's version left-joins
    the child to the whole parent; when the child is an incremental model's latest load
    (get_where_subquery), DuckDB cannot tell that filtered side is small and builds its hash
    table from the parent instead, e.g. every event_id of fact_activities, for each test: a
    cost that grows with history, not with the rows checked (bench/dbt_scale.py --slowest,
    10M events: 4.4 s for the test from dim_users_history in a one-day build, 0.8-1.7 s with
    this version). Cutting the parent to the child's values first (a semi join, which hashes
    the child) keeps the test proportional to the rows it checks.
#}
{% macro default__test_relationships(model, column_name, to, field) %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
    where {{ field }} in (select child.from_field from child)
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}
