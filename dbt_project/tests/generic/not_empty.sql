{#
    Fails when the relation has no row: a cheap guard against a lake path that silently
    matches nothing, or a filter that drops everything.
#}
{% test not_empty(model) %}

select 'no rows in {{ model }}' as failure_reason
from (select count(*) as row_count from {{ model }}) as relation_rows
where relation_rows.row_count = 0

{% endtest %}
