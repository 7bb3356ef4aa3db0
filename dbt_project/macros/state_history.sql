{#
    Boolean SQL: this row opens a new state version, i.e. it is the entity's first snapshot
    or at least one of `columns` differs (null-safely) from the entity's previous snapshot.
    Consecutive identical snapshots (a member added to a second project re-sends the same
    user) collapse into one version. Ordering must be total: pass a tie-breaker (event_id).
#}
{% macro opens_new_version(columns, partition_by, order_by) %}
    {%- set entity_window -%}
        over (partition by {{ partition_by }} order by {{ order_by }})
    {%- endset -%}
    (
        row_number() {{ entity_window }} = 1
        {%- for column in columns %}
        or {{ column }} is distinct from lag({{ column }}) {{ entity_window }}
        {%- endfor %}
    )
{% endmacro %}
