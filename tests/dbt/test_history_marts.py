"""The SCD 2 history marts (dim_users_history, dim_projects_history, dim_tasks_history) on the
fixture lake: exact versions, point-in-time joins, and the test that versions tile time.

Expected values come from the events listed in tests/dbt/lake.py (event numbers in comments).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from dbt.cli.main import dbtRunnerResult

from tests.dbt.conftest import Warehouse
from tests.dbt.lake import event_uuid

pytestmark = pytest.mark.slow

HISTORIES = ("dim_users_history", "dim_projects_history", "dim_tasks_history")
TILE_TIME_TEST = "test.orangescrum.assert_history_versions_tile_time"


def march(day: int, hhmm: str) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return datetime(2024, 3, day, hours, minutes)


def versions(warehouse: Warehouse, history: str, key: str, entity_id: int, columns: str) -> list:
    return warehouse.query(
        f"select valid_from, valid_to, is_current, version_number, {columns}, "
        f"opened_by_event_id from orangescrum_dw_marts.{history} "
        f"where {key} = {entity_id} order by valid_from"
    )


def test_build_ran_the_history_marts_and_their_tests(
    first_build: tuple[Warehouse, dbtRunnerResult],
) -> None:
    _, result = first_build
    statuses = {r.node.unique_id: str(r.status) for r in result.result.results}
    for history in HISTORIES:
        assert statuses[f"model.orangescrum.{history}"] == "success"
    assert statuses[TILE_TIME_TEST] == "pass"
    history_tests = {
        r.node.unique_id: str(r.status)
        for r in result.result.results
        if r.node.resource_type in {"test", "unit_test"}
        and any(history in r.node.unique_id for history in HISTORIES)
    }
    # per mart not_empty and the key; relationships: users 3, projects 4, tasks 6; unit tests:
    # users (versions that lasted no time), tasks (an incremental run continues)
    assert len(history_tests) == 3 * 2 + 3 + 4 + 6 + 2
    assert set(history_tests.values()) == {"pass"}


def test_project_200_created_then_archived_has_two_versions(built_warehouse: Warehouse) -> None:
    assert versions(
        built_warehouse, "dim_projects_history", "project_id", 200, "project_status"
    ) == [
        # created (10), closed when it was archived (34)
        (march(5, "09:00"), march(8, "12:00"), False, 1, "active", event_uuid(10)),
        (march(8, "12:00"), None, True, 2, "archived", event_uuid(34)),
    ]
    # project 100 never changed: one version, current since its creation (4)
    assert versions(
        built_warehouse, "dim_projects_history", "project_id", 100, "project_status"
    ) == [(march(4, "10:00"), None, True, 1, "active", event_uuid(4))]


def test_user_versions_follow_the_payload_changes(built_warehouse: Warehouse) -> None:
    columns = "user_role, is_active"
    # Carol: invited (3), re-sent unchanged when added to project 100 (6): one version; then
    # disabled (29), re-sent unchanged when removed from project 100 (30): the second one
    assert versions(built_warehouse, "dim_users_history", "user_id", 12, columns) == [
        (march(4, "09:45"), march(7, "17:00"), False, 1, "member", True, event_uuid(3)),
        (march(7, "17:00"), None, True, 2, "member", False, event_uuid(29)),
    ]
    # Bob: invited as member (2), promoted to admin (23)
    assert versions(built_warehouse, "dim_users_history", "user_id", 11, columns) == [
        (march(4, "09:30"), march(6, "10:00"), False, 1, "member", True, event_uuid(2)),
        (march(6, "10:00"), None, True, 2, "admin", True, event_uuid(23)),
    ]
    # Alice: registered (1), re-sent unchanged (11); 13 never had a payload: no version
    assert versions(built_warehouse, "dim_users_history", "user_id", 10, columns) == [
        (march(4, "09:00"), None, True, 1, "owner", True, event_uuid(1)),
    ]
    assert versions(built_warehouse, "dim_users_history", "user_id", 13, columns) == []


def test_task_versions_keep_status_transitions(built_warehouse: Warehouse) -> None:
    columns = "task_status, previous_task_status, changed_by_user_id"
    # 1000: created (7), started (12), closed (21), reopened (24), closed again (25)
    assert versions(built_warehouse, "dim_tasks_history", "task_id", 1000, columns) == [
        (march(4, "11:00"), march(5, "09:00"), False, 1, "New", None, 10, event_uuid(7)),
        (march(5, "09:00"), march(5, "17:00"), False, 2, "Start", "New", 11, event_uuid(12)),
        (march(5, "17:00"), march(6, "09:00"), False, 3, "Closed", "Start", 11, event_uuid(21)),
        (march(6, "09:00"), march(6, "12:00"), False, 4, "Opened", "Closed", 11, event_uuid(24)),
        (march(6, "12:00"), None, True, 5, "Closed", "Opened", 11, event_uuid(25)),
    ]  # fmt: skip
    # 1003 was created before the lake's history: first seen closed (32)
    assert versions(built_warehouse, "dim_tasks_history", "task_id", 1003, columns) == [
        (march(7, "11:00"), None, True, 1, "Closed", None, 11, event_uuid(32)),
    ]
    counts = built_warehouse.query(
        "select task_id, count(*) from orangescrum_dw_marts.dim_tasks_history "
        "group by task_id order by task_id"
    )
    assert counts == [(1000, 5), (1001, 2), (1002, 3), (1003, 1), (2000, 2)]


def test_point_in_time_join_finds_the_state_at_each_event(built_warehouse: Warehouse) -> None:
    roles = built_warehouse.query(
        """
        select facts.user_id, users_then.user_role, count(*)
        from orangescrum_dw_marts.fact_activities as facts
        left join orangescrum_dw_marts.dim_users_history as users_then
            on facts.user_id = users_then.user_id
            and facts.event_timestamp >= users_then.valid_from
            and (users_then.valid_to is null or facts.event_timestamp < users_then.valid_to)
        group by all
        order by all
        """
    )
    # one version per event (35 events): Bob acted 10 times as member before 23 promoted him
    # (6th, 10:00), 5 times as admin after; Alice's registration (1) sees its own state
    assert roles == [
        (10, "owner", 14),
        (11, "admin", 5),
        (11, "member", 10),
        (12, "member", 5),
        (13, None, 1),  # 9: no user payload ever, no version
    ]
    statuses_at = built_warehouse.query(
        """
        select at_time, project_status
        from (values (timestamp '2024-03-08 11:59:59'), (timestamp '2024-03-08 12:00:00'))
            as points (at_time)
        inner join orangescrum_dw_marts.dim_projects_history as projects
            on projects.project_id = 200
            and at_time >= projects.valid_from
            and (projects.valid_to is null or at_time < projects.valid_to)
        order by at_time
        """
    )
    assert statuses_at == [
        (march(8, "11:59").replace(second=59), "active"),
        (march(8, "12:00"), "archived"),  # valid_to is exclusive, valid_from inclusive
    ]


# The dimension's columns that the current version of its history must equal, and when that
# state began (the dimension's state_valid_from is the history's valid_from).
CURRENT_STATE_COLUMNS = {
    ("dim_users", "user_id"): ("user_role", "is_active"),
    ("dim_projects", "project_id"): ("project_status", "owner_user_id"),
    ("dim_tasks", "task_id"): ("task_status", "project_id"),
}


def test_current_versions_match_the_dimensions(built_warehouse: Warehouse) -> None:
    for (dim, key), columns in CURRENT_STATE_COLUMNS.items():
        pairs = [(column, column) for column in columns] + [("state_valid_from", "valid_from")]
        differs = " or ".join(
            f"dim.{dim_column} is distinct from history.{history_column}"
            for dim_column, history_column in pairs
        )
        mismatches = built_warehouse.query(
            f"select dim.{key} from orangescrum_dw_marts.{dim} as dim "
            f"inner join orangescrum_dw_marts.{dim}_history as history "
            f"on dim.{key} = history.{key} and history.is_current where {differs}"
        )
        assert mismatches == [], dim
    current = built_warehouse.query(
        "select "
        + ", ".join(
            f"(select count(*) from orangescrum_dw_marts.{history} where is_current)"
            for history in HISTORIES
        )
    )
    assert current == [(3, 2, 5)]  # users 10-12, projects 100 and 200, tasks 1000-1003, 2000


def test_tile_time_test_reports_overlapping_versions(built_warehouse: Warehouse) -> None:
    # A second, closed version of project 100 inside its current one: the current version is
    # then open although a later one exists, and the last one is closed. Removed afterwards,
    # the other tests share this warehouse.
    relation = "orangescrum_dw_marts.dim_projects_history"
    built_warehouse.query(
        f"insert into {relation} by name select 100 as project_id, "
        "timestamp '2024-03-06 00:00:00' as valid_from, "
        "timestamp '2024-03-07 00:00:00' as valid_to, false as is_current, "
        f"(select max(loaded_at) from {relation}) as loaded_at"
    )
    try:
        result = built_warehouse.dbt(
            "test", "--select", "assert_history_versions_tile_time", check=False
        )
        failures = {r.node.unique_id: r.failures for r in result.result.results}
        assert failures == {TILE_TIME_TEST: 2}
    finally:
        built_warehouse.query(
            f"delete from {relation} where project_id = 100 "
            "and valid_from = timestamp '2024-03-06 00:00:00'"
        )
    result = built_warehouse.dbt("test", "--select", "assert_history_versions_tile_time")
    assert [r.failures for r in result.result.results] == [0]
