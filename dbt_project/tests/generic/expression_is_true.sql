{#
    Fails for every row where `expression` is false, like dbt_utils' expression_is_true
    (which we cannot install offline); a null result passes, as there. On a model or on a
    column; with a column, `expression` is appended to it ("column_name >= 0").

        data_tests:
          - expression_is_true:
              arguments:
                expression: "event_count >= active_user_count"
#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({% if column_name %}{{ column_name }} {% endif %}{{ expression }})

{% endtest %}
