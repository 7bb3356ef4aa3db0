"""One ActivityEvent -> the SQL the OrangeScrum app runs for that action on its own tables.

Pure: no database here, so each mapping is unit-tested as exact statements. Every statement is
idempotent (an insert is an upsert on a key taken from the event's ids, an update sets values
from the event), so replaying an event changes nothing.

Event type -> tables written:

- user_registered: companies (the owner's sign-up creates the company), users, company_users
  (user_type 1).
- user_invited: users, company_users (user_type from the role).
- user_logged_in: users.dt_last_login.
- user_disabled: company_users.is_active = 0.
- user_role_changed: company_users.user_type.
- project_created: projects.
- project_updated: projects (name, dates, estimate, isactive).
- project_archived: projects.isactive = 0.
- project_member_added / _removed: project_users insert / delete.
- task_created: easycases (istype 1, legend 1), easycase_milestones, case_activities (type 1).
- task_updated: easycases (title, type, priority, estimate, due date, assignee),
  easycase_milestones.
- task_assigned: easycases.assign_to.
- task_status_changed: easycases.legend, case_activities (type = the new status).
- task_commented: easycases (a reply: istype 2), the task's dt_created, case_activities (type
  7).
- task_moved: easycases.project_id and case_no (the task and its replies),
  case_files.project_id, easycase_milestones (dropped: milestones belong to a project).
- task_deleted: easycases.isactive = 0 (soft delete), case_activities (type 8).
- file_uploaded: case_files, the task's dt_created.
- milestone_created: milestones.
- timer_stopped / time_logged: log_times (approval_status pending).
- time_entry_approved / _rejected: log_times.approval_status, approver_id.
- timer_started: nothing: a running timer is not stored; its time log is written when it stops.

Times are stored as UTC DATETIME at whole seconds, as the app's DATETIME columns hold them.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from orangescrum.core.contract.events import TASK_TYPES

# Events with no table behind them.
SKIPPED_EVENT_TYPES: Final = frozenset({"timer_started"})

# case_activities.type, the app's numbers: a status change is logged as the new status
# (Modified, legend 6, is type 10), a comment as 7, a deletion as 8. Other task events have
# no type of their own in the app and leave no activity row.
ACTIVITY_OF_LEGEND: Final = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 10}
ACTIVITY_COMMENT, ACTIVITY_DELETED = 7, 8
ACTIVITY_EVENT_TYPES: Final = frozenset(
    {"task_created", "task_status_changed", "task_commented", "task_deleted"}
)
# company_users.user_type; users.istype (the app's 1 is its own super admin)
USER_TYPES: Final = {"owner": 1, "admin": 2, "member": 3}
USER_ISTYPES: Final = {"internal": 2, "external": 3}
# easycases.priority and type_id (the contract's task types in their order, from 1)
PRIORITIES: Final = {"high": 0, "medium": 1, "low": 2}
TYPE_IDS: Final = {task_type: number for number, task_type in enumerate(TASK_TYPES, start=1)}
TASK, REPLY = 1, 2  # easycases.istype
# Tasks and replies share easycases.id, as in the app; a task keeps its task id and a reply
# gets this offset plus its comment id, so both keys are stable without auto-increment.
REPLY_ID_OFFSET: Final = 10**12


@dataclass(frozen=True)
class Statement:
    """One parametrised statement (PyMySQL's %s placeholders)."""

    sql: str
    params: tuple[Any, ...] = ()


def uniq_id(kind: str, entity_id: int) -> str:
    """The app's 32-character uniq_id, derived from the entity so a replay writes the same."""
    return hashlib.sha256(f"{kind}:{entity_id}".encode()).hexdigest()[:32]


def utc_seconds(moment: datetime.datetime) -> datetime.datetime:
    """A naive UTC datetime at whole seconds: what a DATETIME column holds."""
    return moment.astimezone(datetime.UTC).replace(tzinfo=None, microsecond=0)


def upsert(table: str, row: dict[str, Any], keys: tuple[str, ...]) -> Statement:
    """INSERT ... ON DUPLICATE KEY UPDATE every non-key column: a replay rewrites the same."""
    columns = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    updates = ", ".join(f"{column} = VALUES({column})" for column in row if column not in keys)
    return Statement(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
        f"ON DUPLICATE KEY UPDATE {updates}",
        tuple(row.values()),
    )


def update(table: str, values: dict[str, Any], where: dict[str, Any]) -> Statement:
    assignments = ", ".join(f"{column} = %s" for column in values)
    condition = " AND ".join(f"{column} = %s" for column in where)
    return Statement(
        f"UPDATE {table} SET {assignments} WHERE {condition}",
        (*values.values(), *where.values()),
    )


def delete(table: str, where: dict[str, Any]) -> Statement:
    condition = " AND ".join(f"{column} = %s" for column in where)
    return Statement(f"DELETE FROM {table} WHERE {condition}", tuple(where.values()))


def translate(event: dict[str, Any], activity_id: int) -> list[Statement]:
    """The statements for one event; `activity_id`: the case_activities id it may write (the
    event's position in the history, so the app's auto-increment ids come out the same).

    Raises ValueError for an event type this module does not know: a new one in the contract
    must be mapped (or listed as skipped) here, not silently dropped.
    """
    event_type = event["event_type"]
    if event_type in SKIPPED_EVENT_TYPES:
        return []
    handler = _HANDLERS.get(event_type)
    if handler is None:
        raise ValueError(f"no app-database mapping for event type {event_type!r}")
    statements = handler(event)
    if event_type in ACTIVITY_EVENT_TYPES:
        statements.append(_activity(event, activity_id))
    return statements


# --- users and companies ---------------------------------------------------------------------


def _user_rows(event: dict[str, Any]) -> list[Statement]:
    state, at = event["user_state"], utc_seconds(event["event_timestamp"])
    first, _, last = state["name"].partition(" ")
    user = {
        "id": state["user_id"],
        "uniq_id": uniq_id("user", state["user_id"]),
        "email": state["email"],
        "name": first,
        "last_name": last,
        "istype": USER_ISTYPES[state["user_type"]],
        "timezone": state["timezone"],
        "isactive": 1,
        "dt_created": utc_seconds(state["created_at"]),
        "dt_updated": at,
    }
    membership = {
        "company_id": event["company_id"],
        "user_id": state["user_id"],
        "user_type": USER_TYPES[state["role"]],
        "is_active": int(state["is_active"]),
        "created": at,
        "modified": at,
    }
    return [
        upsert("users", user, ("id",)),
        upsert("company_users", membership, ("company_id", "user_id")),
    ]


def _user_registered(event: dict[str, Any]) -> list[Statement]:
    at = utc_seconds(event["event_timestamp"])
    company_id = event["company_id"]
    company = {
        "id": company_id,
        "uniq_id": uniq_id("company", company_id),
        "name": f"Company {company_id}",  # the contract carries no company name
        "created": at,
        "modified": at,
    }
    return [upsert("companies", company, ("id",)), *_user_rows(event)]


def _user_logged_in(event: dict[str, Any]) -> list[Statement]:
    at = utc_seconds(event["event_timestamp"])
    return [update("users", {"dt_last_login": at}, {"id": event["user_id"]})]


def _membership_change(values: Callable[[dict[str, Any]], dict[str, Any]]) -> _Handler:
    def handler(event: dict[str, Any]) -> list[Statement]:
        state = event["user_state"]
        changes = values(state) | {"modified": utc_seconds(event["event_timestamp"])}
        where = {"company_id": event["company_id"], "user_id": state["user_id"]}
        return [update("company_users", changes, where)]

    return handler


# --- projects --------------------------------------------------------------------------------


def _project_values(event: dict[str, Any]) -> dict[str, Any]:
    state = event["project_state"]
    return {
        "name": state["name"],
        "short_name": state["short_name"],
        "project_type": state["project_type"],
        "start_date": state["start_date"],
        "end_date": state["end_date"],
        "estimated_hours": state["estimated_hours"],
        "isactive": int(state["status"] == "active"),
        "dt_updated": utc_seconds(event["event_timestamp"]),
    }


def _project_created(event: dict[str, Any]) -> list[Statement]:
    project_id = event["project_id"]
    row = {
        "id": project_id,
        "uniq_id": uniq_id("project", project_id),
        "company_id": event["company_id"],
        "user_id": event["project_state"]["owner_user_id"],
        **_project_values(event),
        "dt_created": utc_seconds(event["event_timestamp"]),
    }
    return [upsert("projects", row, ("id",))]


def _project_updated(event: dict[str, Any]) -> list[Statement]:
    return [update("projects", _project_values(event), {"id": event["project_id"]})]


def _project_archived(event: dict[str, Any]) -> list[Statement]:
    at = utc_seconds(event["event_timestamp"])
    return [update("projects", {"isactive": 0, "dt_updated": at}, {"id": event["project_id"]})]


def _member_added(event: dict[str, Any]) -> list[Statement]:
    row = {
        "project_id": event["project_id"],
        "user_id": event["user_state"]["user_id"],
        "company_id": event["company_id"],
        "dt_visited": utc_seconds(event["event_timestamp"]),
    }
    return [upsert("project_users", row, ("project_id", "user_id"))]


def _member_removed(event: dict[str, Any]) -> list[Statement]:
    where = {"project_id": event["project_id"], "user_id": event["user_state"]["user_id"]}
    return [delete("project_users", where)]


# --- tasks -----------------------------------------------------------------------------------


def _touch(event: dict[str, Any]) -> dict[str, Any]:
    """What every change of a task sets: who changed it, and its last-activity time."""
    return {"updated_by": event["user_id"], "dt_created": utc_seconds(event["event_timestamp"])}


def _task_details(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": state["title"],
        "type_id": TYPE_IDS[state["task_type"]],
        "priority": PRIORITIES[state["priority"]],
        "estimated_hours": state["estimated_hours"],
        "story_point": state["story_points"],
        "assign_to": state["assignee_user_id"],
        "due_date": state["due_date"],
    }


def _milestone_link(event: dict[str, Any]) -> Statement:
    """The task's milestone as the event states it: linked, relinked or unlinked."""
    task_id, milestone_id = event["task_id"], event["task_state"]["milestone_id"]
    if milestone_id is None:
        return delete("easycase_milestones", {"easycase_id": task_id})
    # Who linked it and when change only when the milestone does (assignments run left to
    # right, so milestone_id is compared before it is overwritten).
    return Statement(
        "INSERT INTO easycase_milestones (easycase_id, milestone_id, project_id, user_id, "
        "created) VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
        "user_id = IF(milestone_id = VALUES(milestone_id), user_id, VALUES(user_id)), "
        "created = IF(milestone_id = VALUES(milestone_id), created, VALUES(created)), "
        "project_id = VALUES(project_id), milestone_id = VALUES(milestone_id)",
        (
            task_id,
            milestone_id,
            event["project_id"],
            event["user_id"],
            utc_seconds(event["event_timestamp"]),
        ),
    )


def _task_created(event: dict[str, Any]) -> list[Statement]:
    state, at = event["task_state"], utc_seconds(event["event_timestamp"])
    row = {
        "id": event["task_id"],
        "uniq_id": uniq_id("task", event["task_id"]),
        "case_no": state["task_number"],
        "company_id": event["company_id"],
        "project_id": event["project_id"],
        "user_id": event["user_id"],
        "updated_by": event["user_id"],
        **_task_details(state),
        "message": None,
        "istype": TASK,
        "legend": state["legend"],
        "isactive": 1,
        "dt_created": at,
        "actual_dt_created": at,
    }
    return [upsert("easycases", row, ("id",)), _milestone_link(event)]


def _task_updated(event: dict[str, Any]) -> list[Statement]:
    values = _task_details(event["task_state"]) | _touch(event)
    return [update("easycases", values, {"id": event["task_id"]}), _milestone_link(event)]


def _task_assigned(event: dict[str, Any]) -> list[Statement]:
    values = {"assign_to": event["task_state"]["assignee_user_id"]} | _touch(event)
    return [update("easycases", values, {"id": event["task_id"]})]


def _task_status_changed(event: dict[str, Any]) -> list[Statement]:
    # The app saves the task's form: a status change carries the estimate set with it.
    state = event["task_state"]
    values = {"legend": state["legend"], "estimated_hours": state["estimated_hours"]} | _touch(
        event
    )
    return [update("easycases", values, {"id": event["task_id"]})]


def _task_deleted(event: dict[str, Any]) -> list[Statement]:
    values = {"isactive": 0} | _touch(event)
    return [update("easycases", values, {"id": event["task_id"]})]


def _task_moved(event: dict[str, Any]) -> list[Statement]:
    state, task_id, project_id = event["task_state"], event["task_id"], event["project_id"]
    # Replies are tied to their task by (project_id, case_no): move them first, while the task
    # still holds its old pair. On a replay the task already holds the new pair: a no-op.
    replies = Statement(
        "UPDATE easycases AS reply JOIN easycases AS task ON reply.istype = 2 "
        "AND reply.project_id = task.project_id AND reply.case_no = task.case_no "
        "SET reply.project_id = %s, reply.case_no = %s WHERE task.id = %s AND task.istype = 1",
        (project_id, state["task_number"], task_id),
    )
    values = {
        "project_id": project_id,
        "case_no": state["task_number"],
        "assign_to": state["assignee_user_id"],
        "legend": state["legend"],
    } | _touch(event)
    return [
        replies,
        update("easycases", values, {"id": task_id}),
        update("case_files", {"project_id": project_id}, {"easycase_id": task_id}),
        _milestone_link(event),
    ]


def _task_commented(event: dict[str, Any]) -> list[Statement]:
    state, at = event["task_state"], utc_seconds(event["event_timestamp"])
    reply_id = REPLY_ID_OFFSET + event["comment"]["comment_id"]
    row = {
        "id": reply_id,
        "uniq_id": uniq_id("reply", reply_id),
        "case_no": state["task_number"],
        "company_id": event["company_id"],
        "project_id": event["project_id"],
        "user_id": event["user_id"],
        "title": "",
        "message": event["comment"]["body"],
        "istype": REPLY,
        "legend": state["legend"],
        "isactive": 1,
        "dt_created": at,
        "actual_dt_created": at,
    }
    return [
        upsert("easycases", row, ("id",)),
        update("easycases", _touch(event), {"id": event["task_id"]}),
    ]


def _file_uploaded(event: dict[str, Any]) -> list[Statement]:
    attachment = event["attachment"]
    row = {
        "id": attachment["file_id"],
        "user_id": event["user_id"],
        "project_id": event["project_id"],
        "company_id": event["company_id"],
        "easycase_id": event["task_id"],
        "file": attachment["file_name"],
        "display_name": attachment["file_name"],
        "file_size": round(attachment["size_bytes"] / 1024, 1),
        "isactive": 1,
    }
    return [
        upsert("case_files", row, ("id",)),
        update("easycases", _touch(event), {"id": event["task_id"]}),
    ]


def _activity(event: dict[str, Any], activity_id: int) -> Statement:
    event_type, state = event["event_type"], event["task_state"]
    kind, comment_id = ACTIVITY_OF_LEGEND[state["legend"]], 0
    if event_type == "task_commented":
        kind, comment_id = ACTIVITY_COMMENT, REPLY_ID_OFFSET + event["comment"]["comment_id"]
    elif event_type == "task_deleted":
        kind = ACTIVITY_DELETED
    row = {
        "id": activity_id,
        "easycase_id": event["task_id"],
        "comment_id": comment_id,
        "case_no": state["task_number"],
        "project_id": event["project_id"],
        "user_id": event["user_id"],
        "type": kind,
        "isactive": 1,
        "dt_created": utc_seconds(event["event_timestamp"]),
    }
    return upsert("case_activities", row, ("id",))


# --- milestones and time ---------------------------------------------------------------------


def _milestone_created(event: dict[str, Any]) -> list[Statement]:
    milestone, at = event["milestone"], utc_seconds(event["event_timestamp"])
    row = {
        "id": milestone["milestone_id"],
        "uniq_id": uniq_id("milestone", milestone["milestone_id"]),
        "project_id": event["project_id"],
        "company_id": event["company_id"],
        "user_id": event["user_id"],
        "title": milestone["title"],
        "start_date": at.date(),
        "end_date": milestone["due_date"],
        "isactive": 1,
        "created": at,
        "modified": at,
    }
    return [upsert("milestones", row, ("id",))]


def _time_logged(event: dict[str, Any]) -> list[Statement]:
    log, at = event["time_log"], utc_seconds(event["event_timestamp"])
    started = utc_seconds(log["started_at"])
    row = {
        "log_id": log["time_log_id"],
        "user_id": event["user_id"],
        "project_id": event["project_id"],
        "task_id": event["task_id"],
        "task_date": started.date(),
        "start_datetime": started,
        "end_datetime": utc_seconds(log["ended_at"]),
        "total_hours": log["duration_seconds"],
        "is_billable": int(log["is_billable"]),
        "is_from_timer": int(event["event_type"] == "timer_stopped"),
        "approval_status": log["approval_status"],
        "approver_id": None,
        "created": at,
    }
    return [upsert("log_times", row, ("log_id",))]


def _time_decided(event: dict[str, Any]) -> list[Statement]:
    log = event["time_log"]
    values = {"approval_status": log["approval_status"], "approver_id": event["user_id"]}
    return [update("log_times", values, {"log_id": log["time_log_id"]})]


_Handler = Callable[[dict[str, Any]], list[Statement]]

_HANDLERS: Final[dict[str, _Handler]] = {
    "user_registered": _user_registered,
    "user_invited": _user_rows,
    "user_logged_in": _user_logged_in,
    "user_disabled": _membership_change(lambda state: {"is_active": 0}),
    "user_role_changed": _membership_change(lambda state: {"user_type": USER_TYPES[state["role"]]}),
    "project_created": _project_created,
    "project_updated": _project_updated,
    "project_archived": _project_archived,
    "project_member_added": _member_added,
    "project_member_removed": _member_removed,
    "task_created": _task_created,
    "task_updated": _task_updated,
    "task_assigned": _task_assigned,
    "task_status_changed": _task_status_changed,
    "task_commented": _task_commented,
    "task_deleted": _task_deleted,
    "task_moved": _task_moved,
    "file_uploaded": _file_uploaded,
    "milestone_created": _milestone_created,
    "timer_stopped": _time_logged,
    "time_logged": _time_logged,
    "time_entry_approved": _time_decided,
    "time_entry_rejected": _time_decided,
}


def mapped_event_types() -> frozenset[str]:
    """Event types that write to the app's tables (the rest of EVENT_TYPES is skipped)."""
    return frozenset(_HANDLERS)
