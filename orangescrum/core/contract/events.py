"""The vocabulary of OrangeScrum activity events: event types, task statuses, roles.

These are the enum-like values the Avro contract carries as strings (strings, not Avro enums,
so a new event type is a data change, not a schema break). dbt's accepted_values tests list
the same values.
"""

from __future__ import annotations

from typing import Final

USER_EVENT_TYPES: Final = (
    "user_registered",
    "user_invited",
    "user_logged_in",
    "user_disabled",
    "user_role_changed",
)
PROJECT_EVENT_TYPES: Final = (
    "project_created",
    "project_updated",
    "project_archived",
    "project_member_added",
    "project_member_removed",
)
TASK_EVENT_TYPES: Final = (
    "task_created",
    "task_updated",
    "task_assigned",
    "task_status_changed",
    "task_commented",
    "task_deleted",
    "task_moved",
    "file_uploaded",
)
MILESTONE_EVENT_TYPES: Final = ("milestone_created",)
TIME_EVENT_TYPES: Final = (
    "timer_started",
    "timer_stopped",
    "time_logged",
    "time_entry_approved",
    "time_entry_rejected",
)
EVENT_TYPES: Final = (
    USER_EVENT_TYPES
    + PROJECT_EVENT_TYPES
    + TASK_EVENT_TYPES
    + MILESTONE_EVENT_TYPES
    + TIME_EVENT_TYPES
)

# OrangeScrum's task status legend: the number the app stores next to each status name.
TASK_STATUS_LEGEND: Final = {
    "New": 1,
    "Opened": 2,
    "Closed": 3,
    "Start": 4,
    "Resolved": 5,
    "Modified": 6,
}
TASK_TYPES: Final = (
    "bug",
    "development",
    "enhancement",
    "research",
    "quality_assurance",
    "maintenance",
    "update",
)
TASK_PRIORITIES: Final = ("high", "medium", "low")
USER_ROLES: Final = ("owner", "admin", "member")
USER_TYPES: Final = ("internal", "external")
PROJECT_TYPES: Final = ("development", "marketing", "support", "internal")
PROJECT_STATUSES: Final = ("active", "archived")
APPROVAL_STATUSES: Final = ("pending", "approved", "rejected")
