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



{% macro version_number(partition_by, order_by) %}
    {#-
        SQL: the version's number within its entity, 1 for the first. On an incremental run
        the first snapshot of an entity is its stored version open at the window start
        (column continued_version_number, null on new snapshots), so numbering goes on from it.
    -#}
    (
        row_number() over (partition by {{ partition_by }} order by {{ order_by }})
        + coalesce(max(continued_version_number) over (partition by {{ partition_by }}), 1)
        - 1
    )
{% endmacro %}

{#
    Incremental runs of the state histories (DuckDB; BigQuery rebuilds them as tables).

    A run re-reads only the events from the lookback window's first day on. Each entity with
    a snapshot among them continues from its stored version that was open when the window
    started: that version and every later one are deleted (incremental_predicates =
    version_reaches_lookback_window()) and re-inserted, recomputed from that version plus the
    window's snapshots. A late event inside the window re-sorts into place; versions that
    ended before the window are neither re-read nor rewritten.
#}

{% macro version_reaches_lookback_window() %}
    {#- Boolean SQL on a state history: the version is current or ends inside the window. -#}
    {{ return(
        '(valid_to is null or valid_to >= ' ~ orangescrum.lookback_window_start_at() ~ ')'
    ) }}
{% endmacro %}


{% macro version_open_at_window_start() %}
    {#- Boolean SQL: the version an entity was in when the window's first day began. -#}
    {{ return(
        '(valid_from < ' ~ orangescrum.lookback_window_start_at() ~ ' and '
        ~ orangescrum.version_reaches_lookback_window() ~ ')'
    ) }}
{% endmacro %}

