"""Events -> the app's SQL, exactly, without a database."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from orangescrum.core.appdb.apply import in_event_order
from orangescrum.core.appdb.translate import (
    REPLY_ID_OFFSET,
    SKIPPED_EVENT_TYPES,
    Statement,
    mapped_event_types,
    translate,
    uniq_id,
)
from orangescrum.core.contract.events import EVENT_TYPES
from orangescrum.core.errors import OrangeScrumError

AT = datetime.datetime(2025, 3, 3, 9, 30, 15, 123456, tzinfo=datetime.UTC)
AT_DB = datetime.datetime(2025, 3, 3, 9, 30, 15)  # what the DATETIME column holds


def task_state(**changes: Any) -> dict[str, Any]:
    state = {
        "task_number": 4,
        "title": "Fix billing webhook",
        "task_type": "bug",
        "priority": "high",
        "status": "New",
        "legend": 1,
        "assignee_user_id": 5,
        "due_date": datetime.date(2025, 3, 10),
        "estimated_hours": 16.0,
        "story_points": None,
        "milestone_id": None,
    }
    return state | changes


def event(event_type: str, **fields: Any) -> dict[str, Any]:
    record = {
        "event_id": f"e-{event_type}",
        "event_type": event_type,
        "event_timestamp": AT,
        "company_id": 1,
        "user_id": 3,
        "project_id": 2,
        "task_id": 10,
    }
    return record | fields


def test_every_event_type_is_mapped_or_deliberately_skipped() -> None:
    assert mapped_event_types() | SKIPPED_EVENT_TYPES == set(EVENT_TYPES)
    assert not mapped_event_types() & SKIPPED_EVENT_TYPES
    assert translate(event("timer_started"), 1) == []
    with pytest.raises(ValueError, match="task_teleported"):
        translate(event("task_teleported"), 1)


def test_task_created_is_an_easycases_row_with_legend_1_and_an_activity() -> None:
    statements = translate(event("task_created", task_state=task_state()), 77)
    columns = (
        "id, uniq_id, case_no, company_id, project_id, user_id, updated_by, title, type_id, "
        "priority, estimated_hours, story_point, assign_to, due_date, message, istype, legend, "
        "isactive, dt_created, actual_dt_created"
    )
    assert statements[0] == Statement(
        f"INSERT INTO easycases ({columns}) VALUES ({', '.join(['%s'] * 20)}) "
        "ON DUPLICATE KEY UPDATE "
        + ", ".join(f"{c} = VALUES({c})" for c in columns.split(", ")[1:]),
        (
            10,
            uniq_id("task", 10),
            4,
            1,
            2,
            3,
            3,
            "Fix billing webhook",
            1,
            0,
            16.0,
            None,
            5,
            datetime.date(2025, 3, 10),
            None,
            1,
            1,
            1,
            AT_DB,
            AT_DB,
        ),
    )
    # no milestone: any link is removed; the app's activity log gets type 1 (New)
    assert statements[1] == Statement(
        "DELETE FROM easycase_milestones WHERE easycase_id = %s", (10,)
    )
    assert statements[2].sql.startswith("INSERT INTO case_activities (id, easycase_id, ")
    assert statements[2].params == (77, 10, 0, 4, 2, 3, 1, 1, AT_DB)
    assert len(statements) == 3


def test_a_status_change_updates_the_legend_and_the_estimate_set_with_it() -> None:
    state = task_state(status="Resolved", legend=5)
    statements = translate(event("task_status_changed", task_state=state), 8)
    assert statements[0] == Statement(
        "UPDATE easycases SET legend = %s, estimated_hours = %s, updated_by = %s, "
        "dt_created = %s WHERE id = %s",
        (5, state["estimated_hours"], 3, AT_DB, 10),
    )
    assert statements[1].params[6] == 5  # case_activities.type: Resolve


def test_a_moved_task_changes_project_and_case_number_with_its_replies_and_files() -> None:
    moved = event("task_moved", project_id=3, task_state=task_state(task_number=9, legend=4))
    replies, task, files, milestone = translate(moved, 1)
    assert replies.sql.startswith("UPDATE easycases AS reply JOIN easycases AS task")
    assert replies.params == (3, 9, 10)
    assert task == Statement(
        "UPDATE easycases SET project_id = %s, case_no = %s, assign_to = %s, legend = %s, "
        "updated_by = %s, dt_created = %s WHERE id = %s",
        (3, 9, 5, 4, 3, AT_DB, 10),
    )
    assert files == Statement(
        "UPDATE case_files SET project_id = %s WHERE easycase_id = %s", (3, 10)
    )
    assert milestone == Statement("DELETE FROM easycase_milestones WHERE easycase_id = %s", (10,))


def test_a_deleted_task_is_soft_deleted() -> None:
    statements = translate(event("task_deleted", task_state=task_state(legend=2)), 5)
    assert statements[0] == Statement(
        "UPDATE easycases SET isactive = %s, updated_by = %s, dt_created = %s WHERE id = %s",
        (0, 3, AT_DB, 10),
    )
    assert statements[1].params[6] == 8  # case_activities.type: Deleted


def test_a_time_log_is_a_log_times_row_and_its_approval_an_update() -> None:
    log = {
        "time_log_id": 4,
        "started_at": datetime.datetime(2025, 3, 3, 4, 12, 2, tzinfo=datetime.UTC),
        "ended_at": datetime.datetime(2025, 3, 3, 4, 18, 33, tzinfo=datetime.UTC),
        "duration_seconds": 391,
        "is_billable": True,
        "approval_status": "pending",
    }
    (logged,) = translate(event("time_logged", time_log=log), 1)
    assert logged.sql.startswith(
        "INSERT INTO log_times (log_id, user_id, project_id, task_id, task_date, "
        "start_datetime, end_datetime, total_hours, is_billable, is_from_timer, "
        "approval_status, approver_id, created) VALUES"
    )
    assert logged.params == (
        4,
        3,
        2,
        10,
        datetime.date(2025, 3, 3),
        datetime.datetime(2025, 3, 3, 4, 12, 2),
        datetime.datetime(2025, 3, 3, 4, 18, 33),
        391,
        1,
        0,
        "pending",
        None,
        AT_DB,
    )
    approved = event(
        "time_entry_approved", user_id=1, time_log=log | {"approval_status": "approved"}
    )
    assert translate(approved, 2) == [
        Statement(
            "UPDATE log_times SET approval_status = %s, approver_id = %s WHERE log_id = %s",
            ("approved", 1, 4),
        )
    ]


def test_a_comment_is_a_reply_row_that_bumps_its_task() -> None:
    commented = event(
        "task_commented",
        task_state=task_state(legend=2),
        comment={"comment_id": 6, "body": "Deployed to staging."},
    )
    reply, bump, activity = translate(commented, 12)
    assert reply.params[:3] == (REPLY_ID_OFFSET + 6, uniq_id("reply", REPLY_ID_OFFSET + 6), 4)
    assert "Deployed to staging." in reply.params
    assert bump == Statement(
        "UPDATE easycases SET updated_by = %s, dt_created = %s WHERE id = %s", (3, AT_DB, 10)
    )
    assert activity.params == (12, 10, REPLY_ID_OFFSET + 6, 4, 2, 3, 7, 1, AT_DB)


def test_users_get_the_company_and_memberships_of_the_app() -> None:
    user_state = {
        "user_id": 1,
        "name": "Fatima van Miller",
        "email": "fatima@example.com",
        "role": "owner",
        "user_type": "internal",
        "is_active": True,
        "timezone": "Asia/Kolkata",
        "created_at": AT,
    }
    company, user, membership = translate(event("user_registered", user_state=user_state), 1)
    assert company.params == (1, uniq_id("company", 1), "Company 1", AT_DB, AT_DB)
    assert user.params[3:6] == ("Fatima", "van Miller", 2)
    assert membership.params == (1, 1, 1, 1, AT_DB, AT_DB)
    disabled = event("user_disabled", user_state=user_state | {"user_id": 4, "is_active": False})
    assert translate(disabled, 2) == [
        Statement(
            "UPDATE company_users SET is_active = %s, modified = %s "
            "WHERE company_id = %s AND user_id = %s",
            (0, AT_DB, 1, 4),
        )
    ]


def at(minute: int, second: int = 0) -> datetime.datetime:
    return datetime.datetime(2025, 3, 3, 9, minute, second, tzinfo=datetime.UTC)


def test_deliveries_are_put_back_in_event_order() -> None:
    delivered = [
        {"event_id": "b", "company_id": 1, "event_timestamp": at(0, 3)},
        {"event_id": "a", "company_id": 1, "event_timestamp": at(0, 1)},
        {"event_id": "c", "company_id": 2, "event_timestamp": at(0, 3)},
        {"event_id": "d", "company_id": 1, "event_timestamp": at(5)},
        {"event_id": "e", "company_id": 1, "event_timestamp": at(4, 58)},
    ]
    assert [r["event_id"] for r in in_event_order(delivered)] == ["a", "b", "c", "e", "d"]


def test_an_event_later_than_the_window_is_refused() -> None:
    delivered = [
        {"event_id": "a", "company_id": 1, "event_timestamp": at(2)},
        {"event_id": "b", "company_id": 1, "event_timestamp": at(10)},  # releases a
        {"event_id": "late", "company_id": 1, "event_timestamp": at(1)},  # before a
    ]
    with pytest.raises(
        OrangeScrumError, match=r"Event late at .* \(more than 0:01:00 out of order\)"
    ):
        list(in_event_order(delivered))
