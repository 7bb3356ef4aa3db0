{#
    The one key test of the project, for single and composite keys: fails for every value
    (or combination of `column_names`) that occurs more than once or has a null part. One
    query where a uniqueness test plus a not_null test per column took one each
    (dbt_constraints' primary_key test checks the same; it replaced this project's
    unique_combination_of_columns, which checked uniqueness only).

        data_tests:                       # on a model: a composite key
          - primary_key:
              arguments:
                column_names: [project_id, task_id]

        columns:                          # on a column: a single key
          - name: task_id
            data_tests:
              - primary_key
#}
{% test primary_key(model, column_names=none, column_name=none) %}

{%- set key_columns = column_names or ([column_name] if column_name else []) -%}
{%- if not key_columns -%}
    {% do exceptions.raise_compiler_error(
        'primary_key needs column_names (on a model) or to be declared on a column'
    ) %}
{%- endif %}

select
    {{ key_columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ key_columns | join(', ') }}
having
    count(*) > 1
    {%- for column in key_columns %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
