"""Debezium change events -> ActivityEvent rows (spark/cdc.py), on hand-built records.

The records have the shape a real MariaDB connector writes (JSON with schemas; DATETIME as
epoch milliseconds, DATE as epoch days, DECIMAL as text): tests/appdb/test_cdc_stream.py runs
the same mapping on a real one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orangescrum.core.contract.events import EVENT_TYPES
from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA, event_arrow_schema
from orangescrum.core.lake import LakeLayout
from spark.cdc import (
    CDC_SCHEMA_ID,
    NOT_DERIVABLE,
    CdcRules,
    Lookups,
    Versions,
    events_of,
    lookups_from,
    map_records,
    parse_change,
    to_table,
)
from spark.cdc_stream import SILENT, land_changes
from spark.landing import LandingConfig, publish, split_outcomes

RULES = CdcRules()
T0 = 1740974253000  # 2025-03-03 03:57:33 UTC, a DATETIME as Debezium sends it
T1 = T0 + 3_600_000
T2 = T1 + 3_600_000
T3 = T2 + 3_600_000
COMMIT = 1741100000000  # source.ts_ms of a binlog event
SENT = datetime(2025, 3, 5, tzinfo=UTC)
INGESTED = datetime(2025, 3, 5, 0, 0, 1, tzinfo=UTC)
LOOKUPS = Lookups(
    project_companies={3: 1},
    users={
        7: {
            "id": 7,
            "email": "ananya.schmidt.7@deltaforge1.example",
            "name": "Ananya",
            "last_name": "Schmidt",
            "istype": 2,
            "timezone": "UTC",
            "dt_created": T0,
        }
    },
)

TASK_ROW = {
    "id": 11,
    "uniq_id": "u11",
    "case_no": 4,
    "company_id": 1,
    "project_id": 3,
    "user_id": 1,
    "updated_by": 7,
    "type_id": 3,
    "priority": 2,
    "title": "Improve invoice export",
    "message": None,
    "estimated_hours": "12.50",
    "story_point": 3,
    "assign_to": 6,
    "due_date": 20152,  # 2025-03-05
    "istype": 1,
    "legend": 1,
    "isactive": 1,
    "dt_created": T0,
    "actual_dt_created": T0,
}
TASK_STATE = {
    "task_number": 4,
    "title": "Improve invoice export",
    "task_type": "enhancement",
    "priority": "low",
    "status": "New",
    "legend": 1,
    "assignee_user_id": 6,
    "due_date": date(2025, 3, 5),
    "estimated_hours": 12.5,
    "story_points": 3,
    "milestone_id": None,
}


def source(ts_ms: int = COMMIT, snapshot: str = "false", pos: int = 4711) -> dict[str, Any]:
    return {
        "version": "3.5.0.Final",
        "connector": "mariadb",
        "ts_ms": ts_ms,
        "snapshot": snapshot,
        "db": "orangescrum",
        "file": "binlog.000001",
        "pos": pos,
        "row": 0,
        "gtid": None if snapshot != "false" else f"0-1-{pos}",
    }


def envelope(
    op: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    ts_ms: int = COMMIT,
    pos: int = 4711,
) -> bytes:
    snapshot = "true" if op == "r" else "false"
    payload = {
        "before": before,
        "after": after,
        "source": source(ts_ms, snapshot, pos),
        "op": op,
        "ts_ms": ts_ms + 321,  # Debezium's processing time: never used
    }
    return json.dumps(
        {"schema": {"type": "struct", "optional": False}, "payload": payload}
    ).encode()


def key_of(**key: Any) -> bytes:
    return json.dumps({"schema": {"type": "struct"}, "payload": key}).encode()


def record(table: str, key: bytes | None, value: bytes | None, offset: int = 0) -> dict[str, Any]:
    return {
        "key": key,
        "value": value,
        "topic": f"orangescrum-appdb.orangescrum.{table}",
        "partition": 0,
        "offset": offset,
        "timestamp": SENT,
    }


def mapped(*records: dict[str, Any], lookups: Lookups = LOOKUPS) -> list[dict[str, Any]]:
    return map_records(records, lookups, RULES, INGESTED).rows


def events(table: str, op: str, before: Any, after: Any, **key: Any) -> list[dict[str, Any]]:
    rows = mapped(record(table, key_of(**key), envelope(op, before, after)))
    assert all(row.get("reason") is None for row in rows), rows
    return rows


def types(rows: list[dict[str, Any]]) -> list[str]:
    return [row["event_type"] for row in rows]


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def expected_id(table: str, key: dict[str, Any], event_type: str, ms: int) -> str:
    namespace = uuid.UUID("6f1d3c1e-8d0b-5c4e-9a57-0f2b8f6a1c3d")
    name = f"{table}|{json.dumps(key, sort_keys=True)}|{event_type}|{ms * 1000}"
    return str(uuid.uuid5(namespace, name))


def kafka_columns(table: str, offset: int = 0) -> dict[str, Any]:
    return {
        "kafka_topic": f"orangescrum-appdb.orangescrum.{table}",
        "kafka_partition": 0,
        "kafka_offset": offset,
        "kafka_timestamp": SENT,
        "schema_id": CDC_SCHEMA_ID,
        "ingested_at": INGESTED,
    }


def looked_up(*records: dict[str, Any]) -> Lookups:
    """LOOKUPS plus what lookups_from reads from these records, in this order in each topic."""
    read = lookups_from([r | {"offset": n} for n, r in enumerate(records)], RULES)
    return replace(read, project_companies=LOOKUPS.project_companies, users=LOOKUPS.users)


# --- tasks -----------------------------------------------------------------------------------


def test_a_task_insert_is_task_created_with_the_rows_state_and_kafka_columns() -> None:
    (row,) = events("easycases", "c", None, TASK_ROW, id=11)
    assert row == {
        "event_id": expected_id("easycases", {"id": 11}, "task_created", T0),
        "event_type": "task_created",
        "event_timestamp": at(T0),
        "company_id": 1,
        "user_id": 1,
        "project_id": 3,
        "task_id": 11,
        "client": None,
        "task_state": TASK_STATE,
        "kafka_topic": "orangescrum-appdb.orangescrum.easycases",
        "kafka_partition": 0,
        "kafka_offset": 0,
        "kafka_timestamp": SENT,
        "schema_id": CDC_SCHEMA_ID,
        "ingested_at": INGESTED,
    }


@pytest.mark.parametrize(
    ("change", "event_type"),
    [
        ({"legend": 3}, "task_status_changed"),
        ({"assign_to": 7}, "task_assigned"),
        ({"project_id": 2, "case_no": 9, "legend": 2}, "task_moved"),
        ({"isactive": 0}, "task_deleted"),
        ({"title": "Renamed"}, "task_updated"),
        ({"title": "Renamed", "assign_to": 7}, "task_updated"),
        ({"due_date": None}, "task_updated"),
        ({"estimated_hours": "3.00"}, "task_updated"),
    ],
)
def test_a_task_update_is_the_event_its_changed_columns_mean(
    change: dict[str, Any], event_type: str
) -> None:
    after = TASK_ROW | change | {"updated_by": 8, "dt_created": T1}
    (row,) = events("easycases", "u", TASK_ROW, after, id=11)
    assert (row["event_type"], row["event_timestamp"], row["user_id"]) == (event_type, at(T1), 8)
    assert row["event_id"] == expected_id("easycases", {"id": 11}, event_type, T1)
    assert row["task_state"]["legend"] == after["legend"]


def test_a_touch_only_update_of_a_task_means_no_event() -> None:
    # what a comment or a file upload does to its task (translate._touch)
    after = TASK_ROW | {"updated_by": 8, "dt_created": T1}
    result = map_records(
        [record("easycases", key_of(id=11), envelope("u", TASK_ROW, after))],
        LOOKUPS,
        RULES,
        INGESTED,
    )
    assert (result.rows, result.silent) == ([], 1)


def test_an_update_whose_row_time_did_not_move_is_dated_by_the_commit() -> None:
    (row,) = events("easycases", "u", TASK_ROW, TASK_ROW | {"legend": 2}, id=11)
    assert row["event_timestamp"] == at(COMMIT)


def test_a_snapshot_of_a_deleted_task_is_its_creation_and_its_deletion() -> None:
    row = TASK_ROW | {"isactive": 0, "dt_created": T1}
    created, deleted = events("easycases", "r", None, row, id=11)
    assert (created["event_type"], created["event_timestamp"]) == ("task_created", at(T0))
    assert (deleted["event_type"], deleted["event_timestamp"], deleted["user_id"]) == (
        "task_deleted",
        at(T1),
        7,
    )
    # the same id the binlog's soft delete gets
    (streamed,) = events("easycases", "u", TASK_ROW, row, id=11)
    assert streamed["event_id"] == deleted["event_id"]


def test_a_hard_delete_of_a_task_is_task_deleted_at_the_commit() -> None:
    (row,) = events("easycases", "d", TASK_ROW, None, id=11)
    assert (row["event_type"], row["event_timestamp"]) == ("task_deleted", at(COMMIT))


REPLY_ID = 10**12 + 60
REPLY_ROW = TASK_ROW | {
    "id": REPLY_ID,
    "title": "",
    "message": "Found a regression.",
    "istype": 2,
    "type_id": None,
    "user_id": 7,
    "updated_by": None,
    "dt_created": T1,
    "actual_dt_created": T1,
}
# The comment's touch of its task (translate._touch), and the task's milestone link.
TOUCHED = TASK_ROW | {"updated_by": 7, "dt_created": T1}
LINK = {"easycase_id": 11, "milestone_id": 4, "project_id": 3, "user_id": 1, "created": T0}


def comment(lookups: Lookups, op: str = "c") -> dict[str, Any]:
    (row,) = mapped(
        record("easycases", key_of(id=REPLY_ID), envelope(op, None, REPLY_ROW)), lookups=lookups
    )
    return row


def task_history(*changes: tuple[str, Any, Any]) -> list[dict[str, Any]]:
    return [record("easycases", key_of(id=11), envelope(*change)) for change in changes]


def test_a_reply_insert_is_task_commented_on_the_task_its_project_and_case_number_name() -> None:
    lookups = looked_up(
        *task_history(("c", None, TASK_ROW), ("u", TASK_ROW, TOUCHED)),
        record("easycase_milestones", key_of(easycase_id=11), envelope("c", None, LINK)),
    )
    assert comment(lookups) == {
        "event_id": expected_id("easycases", {"id": REPLY_ID}, "task_commented", T1),
        "event_type": "task_commented",
        "event_timestamp": at(T1),
        "company_id": 1,
        "user_id": 7,
        "project_id": 3,
        "task_id": 11,
        "client": None,
        "task_state": TASK_STATE | {"milestone_id": 4},
        "comment": {"comment_id": 60, "body": "Found a regression."},
        **kafka_columns("easycases"),
    }
    # moved along with its task: nothing
    assert events("easycases", "u", REPLY_ROW, REPLY_ROW | {"project_id": 2}, id=REPLY_ID) == []


def test_a_reply_whose_task_is_not_in_the_topic_keeps_task_id_null_and_its_own_state() -> None:
    row = comment(LOOKUPS)
    assert (row["event_type"], row["task_id"], row["project_id"]) == ("task_commented", None, 3)
    assert row["task_state"] == {"task_number": 4, "legend": 1, "status": "New"}
    assert row["event_id"] == comment(looked_up(*task_history(("c", None, TASK_ROW))))["event_id"]


def test_a_reply_reads_its_task_as_it_was_at_the_comment() -> None:
    at_the_comment = comment(
        looked_up(*task_history(("c", None, TASK_ROW), ("u", TASK_ROW, TOUCHED)))
    )
    # read again after the task was closed: the before-image held at the comment
    closed = TOUCHED | {"legend": 3, "dt_created": T2}
    once = looked_up(
        *task_history(("c", None, TASK_ROW), ("u", TASK_ROW, TOUCHED), ("u", TOUCHED, closed))
    )
    assert comment(once) == at_the_comment
    # changed twice since: its state at the comment is gone from the topic; the id is known
    reopened = closed | {"legend": 2, "dt_created": T3}
    twice = looked_up(*task_history(("u", TOUCHED, closed), ("u", closed, reopened)))
    row = comment(twice)
    assert (row["event_id"], row["task_id"]) == (at_the_comment["event_id"], 11)
    assert row["task_state"] == {"task_number": 4, "legend": 1, "status": "New"}


def test_a_snapshot_reply_carries_its_tasks_current_state() -> None:
    closed = TOUCHED | {"legend": 3, "dt_created": T2}
    lookups = looked_up(*task_history(("r", None, closed)))
    row = comment(lookups, op="r")
    assert row["task_id"] == 11
    assert row["task_state"] == TASK_STATE | {"status": "Closed", "legend": 3}


# --- milestones of tasks ----------------------------------------------------------------------


def links(*changes: tuple[str, Any, Any]) -> list[dict[str, Any]]:
    return [
        record("easycase_milestones", key_of(easycase_id=11), envelope(*change))
        for change in changes
    ]


def test_a_tasks_milestone_is_its_link_at_the_change_or_now_for_a_snapshot_row() -> None:
    linked = looked_up(*links(("c", None, LINK)))
    (created,) = mapped(
        record("easycases", key_of(id=11), envelope("c", None, TASK_ROW)), lookups=linked
    )
    assert created["task_state"] == TASK_STATE | {"milestone_id": 4}
    # relinked later: the task's creation read again still says 4; a snapshot row, 5
    relinked = looked_up(
        *links(("c", None, LINK), ("u", LINK, LINK | {"milestone_id": 5, "created": T2}))
    )
    (again,) = mapped(
        record("easycases", key_of(id=11), envelope("c", None, TASK_ROW)), lookups=relinked
    )
    assert again == created
    snapshot = mapped(
        record("easycases", key_of(id=11), envelope("r", None, TASK_ROW)), lookups=relinked
    )
    assert snapshot[0]["task_state"]["milestone_id"] == 5
    # a link deleted (a task moved out of its project): none
    dropped = looked_up(*links(("c", None, LINK), ("d", LINK, None)))
    (moved,) = mapped(
        record("easycases", key_of(id=11), envelope("r", None, TASK_ROW)), lookups=dropped
    )
    assert moved["task_state"]["milestone_id"] is None


def milestone_change(op: str, before: Any, after: Any, lookups: Lookups) -> list[dict[str, Any]]:
    value = envelope(op, before, after)
    return mapped(record("easycase_milestones", key_of(easycase_id=11), value), lookups=lookups)


RELINKED = LINK | {"milestone_id": 5, "user_id": 8, "created": T2}
# The task row the same save wrote first: its touch at the relinking time.
SAVED = TASK_ROW | {"updated_by": 8, "dt_created": T2}


def test_a_changed_milestone_link_is_task_updated_with_the_task_rows_id() -> None:
    lookups = looked_up(*task_history(("c", None, TASK_ROW), ("u", TASK_ROW, SAVED)))
    (row,) = milestone_change("u", LINK, RELINKED, lookups)
    assert row == {
        "event_id": expected_id("easycases", {"id": 11}, "task_updated", T2),
        "event_type": "task_updated",
        "event_timestamp": at(T2),
        "company_id": 1,
        "user_id": 8,
        "project_id": 3,
        "task_id": 11,
        "client": None,
        "task_state": TASK_STATE | {"milestone_id": 5},
        **kafka_columns("easycase_milestones"),
    }
    # a save that also changed the task's details: the task row's event, the same id
    (details,) = events("easycases", "u", TASK_ROW, SAVED | {"priority": 0}, id=11)
    assert (details["event_type"], details["event_id"]) == ("task_updated", row["event_id"])
    # a task linked after its creation
    (linked,) = milestone_change("c", None, RELINKED, lookups)
    assert linked == row | {"task_state": TASK_STATE | {"milestone_id": 5}}


def test_a_link_written_with_its_tasks_creation_or_moved_unchanged_or_deleted_is_nothing() -> None:
    lookups = looked_up(*task_history(("c", None, TASK_ROW)))
    result = map_records(
        [
            record("easycase_milestones", key_of(easycase_id=11), envelope(op, before, after))
            for op, before, after in [
                ("c", None, LINK),  # created with the task (its actual_dt_created)
                ("r", None, RELINKED),  # a snapshot's task_created carries it
                ("u", LINK, LINK | {"user_id": 8}),  # the same milestone
                ("u", LINK, RELINKED | {"project_id": 2}),  # moved along with its task
                ("d", LINK, None),  # unlinked or moved: no app time (module docstring)
            ]
        ],
        lookups,
        RULES,
        INGESTED,
    )
    assert (result.rows, result.silent) == ([], 5)


def test_a_link_change_whose_task_is_not_in_the_topic() -> None:
    # an update is still task_updated, with only what the link says of the task's state
    (row,) = milestone_change("u", LINK, RELINKED, LOOKUPS)
    assert (row["event_type"], row["task_id"], row["task_state"]) == (
        "task_updated",
        11,
        {"milestone_id": 5},
    )
    # an insert cannot be told from one written with the task's creation: nothing
    assert milestone_change("c", None, RELINKED, LOOKUPS) == []


# --- users, projects, members ----------------------------------------------------------------

MEMBER = {
    "company_id": 1,
    "user_id": 7,
    "user_type": 3,
    "is_active": 1,
    "created": T0,
    "modified": T0,
}
USER_STATE = {
    "user_id": 7,
    "name": "Ananya Schmidt",
    "email": "ananya.schmidt.7@deltaforge1.example",
    "role": "member",
    "user_type": "internal",
    "is_active": True,
    "timezone": "UTC",
    "created_at": at(T0),
}


def test_company_users_rows_are_registrations_invitations_and_their_changes() -> None:
    (invited,) = events("company_users", "c", None, MEMBER, company_id=1, user_id=7)
    assert (invited["event_type"], invited["user_id"], invited["company_id"]) == (
        "user_invited",
        7,
        1,
    )
    assert invited["user_state"] == USER_STATE
    owner = MEMBER | {"user_type": 1, "user_id": 1}
    (registered,) = events("company_users", "r", None, owner, company_id=1, user_id=1)
    assert registered["event_type"] == "user_registered"
    # a user not in the users lookup: the membership's fields only
    assert registered["user_state"] | {"role": "owner"} == {
        "user_id": 1,
        "name": None,
        "email": None,
        "role": "owner",
        "user_type": None,
        "is_active": True,
        "timezone": None,
        "created_at": None,
    }
    disabled = MEMBER | {"is_active": 0, "modified": T1}
    (row,) = events("company_users", "u", MEMBER, disabled, company_id=1, user_id=7)
    assert (row["event_type"], row["event_timestamp"]) == ("user_disabled", at(T1))
    assert row["user_state"]["is_active"] is False
    promoted = MEMBER | {"user_type": 2, "modified": T1}
    (row,) = events("company_users", "u", MEMBER, promoted, company_id=1, user_id=7)
    assert (row["event_type"], row["user_state"]["role"]) == ("user_role_changed", "admin")
    assert types(events("company_users", "r", None, disabled, company_id=1, user_id=7)) == [
        "user_invited",
        "user_disabled",
    ]


PROJECT = {
    "id": 3,
    "uniq_id": "p3",
    "company_id": 1,
    "user_id": 1,
    "name": "Phoenix Website Revamp",
    "short_name": "PHO3",
    "project_type": "marketing",
    "start_date": 20150,
    "end_date": None,
    "estimated_hours": "850.00",
    "isactive": 1,
    "dt_created": T0,
    "dt_updated": T0,
}


def test_project_rows_are_created_updated_and_archived() -> None:
    (created,) = events("projects", "c", None, PROJECT, id=3)
    assert (created["event_type"], created["project_id"], created["user_id"]) == (
        "project_created",
        3,
        1,
    )
    assert created["project_state"] == {
        "name": "Phoenix Website Revamp",
        "short_name": "PHO3",
        "project_type": "marketing",
        "status": "active",
        "owner_user_id": 1,
        "start_date": date(2025, 3, 3),
        "end_date": None,
        "estimated_hours": 850.0,
    }
    renamed = PROJECT | {"name": "Phoenix 2", "dt_updated": T1}
    assert types(events("projects", "u", PROJECT, renamed, id=3)) == ["project_updated"]
    archived = PROJECT | {"isactive": 0, "dt_updated": T1}
    (row,) = events("projects", "u", PROJECT, archived, id=3)
    assert (row["event_type"], row["project_state"]["status"]) == ("project_archived", "archived")
    snapshot = events("projects", "r", None, archived, id=3)
    assert types(snapshot) == ["project_created", "project_archived"]
    assert snapshot[1]["event_id"] == row["event_id"]


def test_project_users_inserts_and_deletes_are_members_added_and_removed() -> None:
    membership = {"project_id": 3, "user_id": 7, "company_id": 1, "dt_visited": T0}
    (added,) = events("project_users", "c", None, membership, project_id=3, user_id=7)
    assert (added["event_type"], added["event_timestamp"], added["project_id"]) == (
        "project_member_added",
        at(T0),
        3,
    )
    assert added["user_state"] == USER_STATE | {"role": None, "is_active": None}
    (removed,) = events("project_users", "d", membership, None, project_id=3, user_id=7)
    assert (removed["event_type"], removed["event_timestamp"]) == (
        "project_member_removed",
        at(COMMIT),
    )
    assert (
        events(
            "project_users",
            "u",
            membership,
            membership | {"dt_visited": T1},
            project_id=3,
            user_id=7,
        )
        == []
    )


MEMBERSHIP = {"project_id": 3, "user_id": 7, "company_id": 1, "dt_visited": T1}


def membership_change(op: str, lookups: Lookups) -> dict[str, Any]:
    before, after = (MEMBERSHIP, None) if op == "d" else (None, MEMBERSHIP)
    value = envelope(op, before, after)
    (row,) = mapped(
        record("project_users", key_of(project_id=3, user_id=7), value), lookups=lookups
    )
    return row


def company_users(*changes: tuple[str, Any, Any]) -> list[dict[str, Any]]:
    key = key_of(company_id=1, user_id=7)
    return [record("company_users", key, envelope(*change)) for change in changes]


def test_a_members_role_and_is_active_are_their_company_users_row_at_the_change() -> None:
    admin = MEMBER | {"user_type": 2}
    added = membership_change("c", looked_up(*company_users(("r", None, admin))))
    assert added == {
        "event_id": expected_id(
            "project_users", {"project_id": 3, "user_id": 7}, "project_member_added", T1
        ),
        "event_type": "project_member_added",
        "event_timestamp": at(T1),
        "company_id": 1,
        "user_id": 7,
        "project_id": 3,
        "client": None,
        "user_state": USER_STATE | {"role": "admin"},
        **kafka_columns("project_users"),
    }
    # read again after the member was disabled: the row as it was at the addition
    disabled = admin | {"is_active": 0, "modified": T2}
    later = looked_up(*company_users(("r", None, admin), ("u", admin, disabled)))
    assert membership_change("c", later) == added
    # a snapshot row, and a removal (dated by the commit): the row now
    for op in ("r", "d"):
        assert membership_change(op, later)["user_state"] == USER_STATE | {
            "role": "admin",
            "is_active": False,
        }
    # changed twice since the addition: not known any more
    promoted = disabled | {"user_type": 1, "modified": T3}
    twice = looked_up(*company_users(("u", disabled, promoted)))
    assert membership_change("c", twice)["user_state"] == USER_STATE | {
        "role": None,
        "is_active": None,
    }


# --- lookups ---------------------------------------------------------------------------------


def test_lookups_from_keeps_each_rows_latest_images_and_every_case_number_a_task_held() -> None:
    moved = TASK_ROW | {"project_id": 2, "case_no": 9, "dt_created": T1}
    deleted = TASK_ROW | {"id": 12, "case_no": 5}
    bare = {"before": None, "after": LINK, "op": "r", "source": source()}  # as read_lookups reads
    lookups = lookups_from(
        [
            record("projects", key_of(id=3), envelope("r", None, PROJECT), offset=0),
            record("users", key_of(id=7), envelope("r", None, {"id": 7, "name": "A"}), offset=0),
            record("easycases", key_of(id=11), envelope("r", None, TASK_ROW), offset=0),
            record("easycases", key_of(id=REPLY_ID), envelope("c", None, REPLY_ROW), offset=1),
            record("easycases", key_of(id=12), envelope("c", None, deleted), offset=2),
            record("easycases", key_of(id=11), envelope("u", TASK_ROW, moved), offset=3),
            record("easycases", key_of(id=12), envelope("d", deleted, None), offset=4),
            record("easycases", key_of(id=12), None, offset=5),  # the delete's tombstone
            record("easycase_milestones", key_of(easycase_id=11), b"{oops", offset=0),
            record("easycase_milestones", key_of(easycase_id=11), json.dumps(bare), offset=1),
            *[r | {"offset": n} for n, r in enumerate(company_users(("r", None, MEMBER)))],
            record("x", key_of(id=1), envelope("r", None, {"id": 1})) | {"topic": "events-raw"},
        ],
        RULES,
    )
    assert lookups == Lookups(
        project_companies={3: 1},
        users={7: {"id": 7, "name": "A"}},
        task_ids={(3, 4): 11, (2, 9): 11, (3, 5): 12},
        tasks={11: Versions(moved, TASK_ROW)},
        milestone_links={11: Versions(LINK)},
        memberships={(1, 7): Versions(MEMBER)},
    )


def test_versions_at_a_moment() -> None:
    old, new = {"v": 1, "since": T0}, {"v": 2, "since": T2}
    versions = Versions(new, old)
    assert [versions.at(moment, "since") for moment in (None, T3, T2, T1, T0, T0 - 1)] == [
        new,
        new,
        new,
        old,
        old,
        None,
    ]
    assert Versions(None, old).at(T1, "since") is None  # deleted: since when is unknown


# --- time, milestones, files -----------------------------------------------------------------

LOG = {
    "log_id": 41,
    "user_id": 7,
    "project_id": 3,
    "task_id": 11,
    "task_date": 20150,
    "start_datetime": T0,
    "end_datetime": T1,
    "total_hours": 3600,
    "is_billable": 1,
    "is_from_timer": 1,
    "approval_status": "pending",
    "approver_id": None,
    "created": T1,
}


def test_log_times_rows_are_time_logs_and_their_decisions() -> None:
    (stopped,) = events("log_times", "c", None, LOG, log_id=41)
    assert stopped["event_type"] == "timer_stopped"
    assert (stopped["company_id"], stopped["project_id"], stopped["task_id"]) == (1, 3, 11)
    assert stopped["event_timestamp"] == at(T1)
    assert stopped["time_log"] == {
        "time_log_id": 41,
        "started_at": at(T0),
        "ended_at": at(T1),
        "duration_seconds": 3600,
        "is_billable": True,
        "approval_status": "pending",
    }
    manual = LOG | {"is_from_timer": 0}
    assert types(events("log_times", "r", None, manual, log_id=41)) == ["time_logged"]
    for decision in ("approved", "rejected"):
        decided = LOG | {"approval_status": decision, "approver_id": 3}
        (row,) = events("log_times", "u", LOG, decided, log_id=41)
        assert (row["event_type"], row["user_id"], row["event_timestamp"]) == (
            f"time_entry_{decision}",
            3,
            at(COMMIT),
        )
        assert row["time_log"]["approval_status"] == decision


def test_milestones_and_files() -> None:
    milestone = {
        "id": 4,
        "uniq_id": "m4",
        "project_id": 3,
        "company_id": 1,
        "user_id": 3,
        "title": "Release 1.1",
        "start_date": 20150,
        "end_date": 20177,
        "isactive": 1,
        "created": T0,
        "modified": T0,
    }
    (row,) = events("milestones", "r", None, milestone, id=4)
    assert (row["event_type"], row["user_id"], row["project_id"]) == ("milestone_created", 3, 3)
    assert row["milestone"] == {
        "milestone_id": 4,
        "title": "Release 1.1",
        "due_date": date(2025, 3, 30),
    }
    file_row = {
        "id": 20,
        "user_id": 7,
        "project_id": 3,
        "company_id": 1,
        "easycase_id": 11,
        "comment_id": 0,
        "file": "invoice_20.png",
        "display_name": "invoice_20.png",
        "file_size": "55.5",
        "isactive": 1,
    }
    (row,) = events("case_files", "c", None, file_row, id=20)
    assert (row["event_type"], row["task_id"], row["event_timestamp"]) == (
        "file_uploaded",
        11,
        at(COMMIT),
    )
    assert row["attachment"] == {"file_id": 20, "file_name": "invoice_20.png", "size_bytes": 56832}
    assert events("case_files", "r", None, file_row, id=20) == []  # nothing dates it


def test_silent_tables_and_tombstones_mean_no_event() -> None:
    result = map_records(
        [
            record("companies", key_of(id=1), envelope("r", None, {"id": 1, "name": "C"})),
            record("users", key_of(id=7), envelope("u", {"id": 7}, {"id": 7})),
            record("case_activities", key_of(id=1), envelope("c", None, {"id": 1})),
            record("easycase_milestones", key_of(easycase_id=1), envelope("d", {"x": 1}, None)),
            record("project_users", key_of(project_id=3, user_id=7), None),
        ],
        LOOKUPS,
        RULES,
        INGESTED,
    )
    assert (result.rows, result.silent) == ([], 5)


def test_every_contract_event_type_is_mapped_or_listed_as_not_derivable() -> None:
    produced = {
        "user_registered", "user_invited", "user_disabled", "user_role_changed",
        "project_created", "project_updated", "project_archived", "project_member_added",
        "project_member_removed", "task_created", "task_updated", "task_assigned",
        "task_status_changed", "task_commented", "task_deleted", "task_moved", "file_uploaded",
        "milestone_created", "timer_stopped", "time_logged", "time_entry_approved",
        "time_entry_rejected",
    }  # fmt: skip
    assert produced | NOT_DERIVABLE == set(EVENT_TYPES)
    assert not produced & NOT_DERIVABLE


# --- ids -------------------------------------------------------------------------------------


def test_the_same_change_read_again_or_resnapshotted_gets_the_same_ids() -> None:
    after = TASK_ROW | {"legend": 3, "updated_by": 8, "dt_created": T1}
    first = mapped(record("easycases", key_of(id=11), envelope("u", TASK_ROW, after), offset=5))
    # a connector restart re-reads the binlog event: a new Kafka offset, the same change
    again = mapped(record("easycases", key_of(id=11), envelope("u", TASK_ROW, after), offset=9))
    assert [r["event_id"] for r in first] == [r["event_id"] for r in again]
    # the snapshot and the binlog see one creation: other positions, times of reading, ops
    snapshot = mapped(
        record("easycases", key_of(id=11), envelope("r", None, TASK_ROW, ts_ms=COMMIT, pos=1))
    )
    resnapshot = mapped(
        record(
            "easycases",
            key_of(id=11),
            envelope("r", None, TASK_ROW, ts_ms=COMMIT + 86_400_000, pos=99),
        )
    )
    streamed = mapped(record("easycases", key_of(id=11), envelope("c", None, TASK_ROW, pos=7)))
    ids = {tuple(r["event_id"] for r in rows) for rows in (snapshot, resnapshot, streamed)}
    assert len(ids) == 1
    # different changes, different ids
    other = TASK_ROW | {"legend": 4, "updated_by": 8, "dt_created": T1 + 1000}
    (later,) = mapped(record("easycases", key_of(id=11), envelope("u", after, other)))
    assert later["event_id"] != first[0]["event_id"]


def test_a_binlog_dated_change_keeps_its_id_across_reads() -> None:
    membership = {"project_id": 3, "user_id": 7, "company_id": 1, "dt_visited": T0}
    value = envelope("d", membership, None)
    once = mapped(record("project_users", key_of(project_id=3, user_id=7), value, offset=1))
    twice = mapped(record("project_users", key_of(project_id=3, user_id=7), value, offset=8))
    assert once[0]["event_id"] == twice[0]["event_id"]


# --- dead letters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key", "value", "reason"),
    [
        ("easycases", key_of(id=11), b"{not json", "unparsable_json"),
        ("easycases", b"\xff\xfe", envelope("c", None, TASK_ROW), "unparsable_json"),
        ("easycases", key_of(id=11), b'{"schema": {}, "payload": {"x": 1}}', "not_a_change_event"),
        ("invoices", key_of(id=1), envelope("c", None, {"id": 1}), "unknown_table"),
        ("easycases", None, envelope("c", None, TASK_ROW), "missing_key"),
        ("easycases", key_of(), envelope("c", None, TASK_ROW), "missing_key"),
        ("easycases", key_of(id=11), envelope("c", None, None), "missing_after_image"),
        ("easycases", key_of(id=11), envelope("u", TASK_ROW, None), "missing_after_image"),
        ("easycases", key_of(id=11), envelope("u", None, TASK_ROW), "missing_before_image"),
        ("easycases", key_of(id=11), envelope("t", None, TASK_ROW), "unmapped_change"),
        ("projects", key_of(id=3), envelope("d", PROJECT, None), "unmapped_change"),
        ("log_times", key_of(log_id=41), envelope("d", LOG, None), "unmapped_change"),
        (
            "easycases",
            key_of(id=11),
            envelope("c", None, TASK_ROW | {"company_id": None}),
            "missing_required_field",
        ),
        (
            "easycases",
            key_of(id=11),
            envelope("c", None, TASK_ROW | {"actual_dt_created": None}),
            "missing_required_field",
        ),
        (
            "log_times",
            key_of(log_id=41),
            envelope("u", LOG, LOG | {"approval_status": "approved"}),
            "missing_required_field",  # no approver
        ),
        (
            "easycases",
            key_of(id=11),
            envelope("c", None, TASK_ROW | {"actual_dt_created": 0}),
            "timestamp_out_of_range",
        ),
        (
            "easycases",
            key_of(id=11),
            envelope("c", None, TASK_ROW | {"actual_dt_created": 253402300799000}),
            "timestamp_out_of_range",
        ),
        (
            "log_times",
            key_of(log_id=41),
            envelope("c", None, LOG | {"project_id": 99}),
            "unknown_project",
        ),
        (
            "easycase_milestones",
            key_of(easycase_id=11),
            envelope("u", LINK | {"project_id": 99}, RELINKED | {"project_id": 99}),
            "unknown_project",
        ),
        (
            "easycases",
            key_of(id=11),
            envelope("c", None, TASK_ROW | {"actual_dt_created": 10**20}),
            "timestamp_out_of_range",
        ),
        (
            "easycases",
            key_of(id=11),
            envelope("c", None, TASK_ROW | {"actual_dt_created": "yesterday"}),
            "malformed_change",
        ),
        (
            "projects",
            key_of(id=3),
            envelope("c", None, PROJECT | {"estimated_hours": "many"}),
            "malformed_change",
        ),
    ],
)
def test_what_cannot_be_mapped_is_a_dead_letter_with_its_reason_and_bytes(
    table: str, key: bytes | None, value: bytes, reason: str
) -> None:
    (row,) = mapped(record(table, key, value, offset=3))
    assert row["reason"] == reason
    assert row["error_detail"]
    assert (row["raw_key"], row["raw_value"]) == (key, value)
    assert (row["kafka_topic"], row["kafka_offset"]) == (
        f"orangescrum-appdb.orangescrum.{table}",
        3,
    )
    assert "event_id" not in row


def test_a_topic_outside_the_prefix_is_an_unknown_table() -> None:
    rows = map_records(
        [record("x", key_of(id=1), envelope("c", None, {"id": 1})) | {"topic": "events-raw"}],
        LOOKUPS,
        RULES,
        INGESTED,
    ).rows
    assert [r["reason"] for r in rows] == ["unknown_table"]


def test_parse_change_reads_the_envelope() -> None:
    change = parse_change(
        "orangescrum-appdb.orangescrum.easycases",
        key_of(id=11),
        envelope("r", None, TASK_ROW),
        RULES,
    )
    assert change is not None
    assert (change.table, dict(change.key), change.op, change.committed_ms) == (
        "easycases",
        {"id": 11},
        "r",
        COMMIT,
    )
    assert events_of(change, LOOKUPS)[0]["event_type"] == "task_created"


# --- into the lake ---------------------------------------------------------------------------


def test_mapped_rows_have_the_lakes_event_and_dead_letter_schemas() -> None:
    rows = mapped(
        record("easycases", key_of(id=11), envelope("r", None, TASK_ROW | {"isactive": 0})),
        record("log_times", key_of(log_id=41), envelope("c", None, LOG)),
        record("easycases", key_of(id=11), b"{oops"),
    )
    landed = split_outcomes(to_table(rows))
    assert landed.events.schema == event_arrow_schema()
    assert landed.dead_letters.schema == DEAD_LETTER_SCHEMA
    assert landed.events.column("event_type").to_pylist() == [
        "task_created",
        "task_deleted",
        "timer_stopped",
    ]
    assert landed.dead_letters.column("reason").to_pylist() == ["unparsable_json"]


def test_land_changes_writes_events_and_dead_letters_into_the_lake_zones(tmp_path: Path) -> None:
    lake = LakeLayout(str(tmp_path / "lake"))
    config = LandingConfig(lake=lake, landing_id="cdc00001")
    records = [
        record("easycases", key_of(id=11), envelope("r", None, TASK_ROW), offset=0),
        record("companies", key_of(id=1), envelope("r", None, {"id": 1}), offset=0),
        record("easycases", key_of(id=12), b"{oops", offset=1),
    ]
    schema = pa.schema(
        [
            ("key", pa.binary()),
            ("value", pa.binary()),
            ("topic", pa.string()),
            ("partition", pa.int32()),
            ("offset", pa.int64()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
        ]
    )
    batches = pa.Table.from_pylist(records, schema=schema).to_batches()
    summaries = pa.Table.from_batches(
        list(land_changes(iter(batches), config, 0, LOOKUPS, RULES, INGESTED))
    ).to_pylist()
    outcomes = {row["outcome"]: row["rows"] for row in summaries}
    assert outcomes == {"landed": 1, "unparsable_json": 1, SILENT: 1}
    filesystem, _ = lake.open()
    publish(filesystem, sorted({path for row in summaries for path in row["files"]}))
    events_file = (
        tmp_path / "lake/raw/events/event_date=2025-03-03/part-cdc00001-b0000000000-p00000.parquet"
    )
    table = pq.read_table(events_file)
    assert table.schema.remove_metadata() == event_arrow_schema()
    assert table.column("event_type").to_pylist() == ["task_created"]
    (dead,) = (tmp_path / "lake/raw/_dead_letter").rglob("*.parquet")
    assert pq.read_table(dead).column("reason").to_pylist() == ["unparsable_json"]
