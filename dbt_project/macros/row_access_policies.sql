{#
    Post-hook of the marts (dbt_project.yml): on BigQuery, one row access policy per company
    listed in var('company_analysts') ("1=group:acme-analysts@acme.com;2=user:ann@globex.com"),
    filtering the mart to that company's rows, plus one unfiltered policy for the readers of
    var('marts_readers'), since a table with any row access policy shows nothing to a
    principal no policy names. Only on marts with a company_id column, only on BigQuery, and
    only when analysts are configured: otherwise an empty statement (DuckDB, dev).
#}
{% macro row_access_policies(relation=none, columns=none) %}
    {% if target.type != 'bigquery' %}
        {{ return('') }}
    {% endif %}
    {% set analysts = orangescrum.parse_company_analysts(var('company_analysts', '')) %}
    {% set relation = relation or this %}
    {% set columns = columns if columns is not none else (model.columns.keys() | list) %}
    {% if not analysts or 'company_id' not in columns %}
        {{ return('') }}
    {% endif %}
    {% set readers = (var('marts_readers', '') or '').split(',') | map('trim') | select | list %}
    {% set statements = [] %}
    {% for company_id, principals in analysts.items() %}
        {% do statements.append(
            'create or replace row access policy company_' ~ company_id ~ '_analysts on '
            ~ relation ~ ' grant to (' ~ orangescrum.quoted_principals(principals)
            ~ ') filter using (company_id = ' ~ company_id ~ ')'
        ) %}
    {% endfor %}
    {% if readers %}
        {% do statements.append(
            'create or replace row access policy all_companies_readers on ' ~ relation
            ~ ' grant to (' ~ orangescrum.quoted_principals(readers)
            ~ ') filter using (true)'
        ) %}
    {% endif %}
    {{ return(statements | join(';\n')) }}
{% endmacro %}


{% macro parse_company_analysts(spec) %}
    {#- "1=group:a@x.com,user:b@x.com;2=group:c@y.com" -> {1: [...], 2: [...]} -#}
    {% set analysts = {} %}
    {% for entry in (spec or '').split(';') if entry | trim %}
        {% set company_id, _, principals = entry.partition('=') %}
        {% set company_id = company_id | trim %}
        {% set principals = principals.split(',') | map('trim') | select | list %}
        {% if not modules.re.match('^[0-9]+$', company_id) or not principals %}
            {% do exceptions.raise_compiler_error(
                "var company_analysts: '" ~ entry ~ "' is not company_id=principal[,principal]"
                ~ " (e.g. 1=group:acme-analysts@acme.com)"
            ) %}
        {% endif %}
        {% do analysts.update({company_id | int: principals}) %}
    {% endfor %}
    {{ return(analysts) }}
{% endmacro %}


{% macro quoted_principals(principals) %}
    {% set quoted = [] %}
    {% for principal in principals %}
        {% do quoted.append('"' ~ principal | replace('"', '') ~ '"') %}
    {% endfor %}
    {{ return(quoted | join(', ')) }}
{% endmacro %}


{#
    dbt run-operation print_row_access_policies --args '{model_name: fact_activities}'
    Logs the policies the post-hook would create on a mart (CI checks them offline).
#}
{% macro print_row_access_policies(model_name) %}
    {% set node = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', model_name)
        | first %}
    {% set relation = api.Relation.create(
        database=node.database, schema=node.schema, identifier=node.alias
    ) %}
    {% set sql = orangescrum.row_access_policies(relation, node.columns.keys() | list) %}
    {% do log('-- row access policies of ' ~ model_name ~ '\n' ~ sql, info=true) %}
    {{ return(sql) }}
{% endmacro %}
