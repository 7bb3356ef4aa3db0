{#
    The primary-key test of composite-grain models: fails for every combination of
    `column_names` that occurs more than once or has a null part. One query where a
    unique-combination test plus a not_null test per column took one each (dbt_constraints'
    primary_key test checks the same).
#}
{% test primary_key(model, column_names) %}

select
    {{ column_names | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ column_names | join(', ') }}
having
    count(*) > 1
    {%- for column in column_names %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
