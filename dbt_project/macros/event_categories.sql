{#
    Event types by category, as in orangescrum/core/contract/events.py (USER_EVENT_TYPES, ...). The
    accepted_values tests in the YAML list the same values; tests/dbt checks both against
    orangescrum/core/contract/events.py so the three cannot drift.
#}
{% macro event_categories() %}
    {{ return({
        'user': [
            'user_registered',
            'user_invited',
            'user_logged_in',
            'user_disabled',
            'user_role_changed',
        ],
        'project': [
            'project_created',
            'project_updated',
            'project_archived',
            'project_member_added',
            'project_member_removed',
        ],
        'task': [
            'task_created',
            'task_updated',
            'task_assigned',
            'task_status_changed',
            'task_commented',
            'task_deleted',
            'task_moved',
            'file_uploaded',
        ],
        'milestone': ['milestone_created'],
        'time': [
            'timer_started',
            'timer_stopped',
            'time_logged',
            'time_entry_approved',
            'time_entry_rejected',
        ],
    }) }}
{% endmacro %}


{% macro event_category(event_type_column) %}
    {#- SQL case expression mapping an event type to its category ('other' if unknown). -#}
    case
        {%- for category, event_types in orangescrum.event_categories().items() %}
        when {{ event_type_column }} in (
            '{{ event_types | join("', '") }}'
        ) then '{{ category }}'
        {%- endfor %}
        else 'other'
    end
{% endmacro %}
