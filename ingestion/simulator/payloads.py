"""The contract's nested records (user_state, task_state, time_log, ...) built from the state.

Each function snapshots an entity at the moment of the event, so later changes to the entity
never leak into records already emitted.
"""

from __future__ import annotations

from typing import Any

from ingestion.simulator.clock import SECOND, to_dt
from ingestion.simulator.state import Project, Task, TimeEntry, User
from orangescrum.core.contract.events import TASK_STATUS_LEGEND


def client_of(event_type: str, seed_bits: int) -> str:
    """Where the action was made (schema v2's `client`), drawn from the event id's bits.

    Using the id instead of the shared RNG keeps every other simulated value unchanged.
    """
    share = seed_bits % 100
    if event_type == "task_commented" and share < 10:
        return "email"  # OrangeScrum lets people reply to task e-mails
    if event_type in ("timer_started", "timer_stopped") and share < 40:
        return "mobile"
    return "web" if share < 75 else "mobile" if share < 93 else "api"


def user_state(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "user_type": user.user_type,
        "is_active": user.active,
        "timezone": user.tz_name,
        "created_at": to_dt(user.created_us),
    }


def project_state(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "short_name": project.short_name,
        "project_type": project.project_type,
        "status": project.status,
        "owner_user_id": project.creator.user_id,
        "start_date": project.start_date,
        "end_date": project.end_date,
        "estimated_hours": project.estimated_hours,
    }


def task_state(task: Task) -> dict[str, Any]:
    return {
        "task_number": task.number,
        "title": task.title,
        "task_type": task.task_type,
        "priority": task.priority,
        "status": task.status,
        "legend": TASK_STATUS_LEGEND[task.status],
        "assignee_user_id": task.assignee.user_id if task.assignee else None,
        "due_date": task.due_date,
        "estimated_hours": task.estimated_hours,
        "story_points": task.story_points,
        "milestone_id": task.milestone_id,
    }


def time_log(entry: TimeEntry) -> dict[str, Any]:
    return {
        "time_log_id": entry.time_log_id,
        "started_at": to_dt(entry.started_us),
        "ended_at": to_dt(entry.ended_us),
        "duration_seconds": (entry.ended_us - entry.started_us) // SECOND,
        "is_billable": entry.is_billable,
        "approval_status": entry.approval_status,
    }
