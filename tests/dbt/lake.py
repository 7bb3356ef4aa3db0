"""A tiny, hand-written OrangeScrum history written as lake Parquet files for the dbt tests.

One company (1), users 10 Alice (owner), 11 Bob, 12 Carol and 13 (seen only logging in),
projects 100 Website and 200 Support, tasks 1000-1003 and 2000, over Monday 2024-03-04 to
Friday 2024-03-08. Every expected number in tests/dbt is derived by hand from EVENTS below;
the comments next to each event say what it contributes.

Quirks on purpose: event 16 is delivered twice (a Kafka redelivery), event 28 lands two days
late, task 1003 has no task_created event, identical user payloads repeat (they must collapse
into one state version). LATE_EVENTS and TOO_LATE_EVENTS are Saturday's batches for the
incremental tests; they are written with the latest contract (v2, which adds `client`) while
the first week is v1, so the lake mixes schema versions as it does after an upgrade.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.simulator import Delivery
from orangescrum.core.contract.events import TASK_STATUS_LEGEND
from orangescrum.core.contract.schema import DEAD_LETTER_SCHEMA, event_arrow_schema

COMPANY_ID = 1
TOPIC = "events-raw"
INGESTION_DELAY = timedelta(seconds=5)


def at(day: int, hhmm: str) -> datetime:
    """A UTC timestamp in March 2024."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return datetime(2024, 3, day, hours, minutes, tzinfo=UTC)


def event_uuid(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


USERS: dict[int, dict[str, Any]] = {
    10: {"name": "Alice Martin", "email": "alice@example.com", "role": "owner",
         "user_type": "internal", "timezone": "Europe/Paris", "created_at": at(4, "09:00")},
    11: {"name": "Bob Chen", "email": "bob@example.com", "role": "member",
         "user_type": "internal", "timezone": "Asia/Kolkata", "created_at": at(4, "09:30")},
    12: {"name": "Carol Diaz", "email": "carol@example.com", "role": "member",
         "user_type": "external", "timezone": "America/New_York", "created_at": at(4, "09:45")},
}  # fmt: skip


def user_state(user_id: int, **changes: Any) -> dict[str, Any]:
    return {"user_id": user_id, "is_active": True, **USERS[user_id], **changes}


def project_state(project_id: int, **changes: Any) -> dict[str, Any]:
    base = {
        100: {"name": "Website", "short_name": "WEB", "project_type": "development",
              "status": "active", "owner_user_id": 10, "start_date": date(2024, 3, 4),
              "end_date": None, "estimated_hours": 120.0},
        200: {"name": "Support", "short_name": "SUP", "project_type": "support",
              "status": "active", "owner_user_id": 11, "start_date": None,
              "end_date": None, "estimated_hours": None},
    }[project_id]  # fmt: skip
    return {**base, **changes}


TASKS: dict[int, dict[str, Any]] = {
    1000: {"task_number": 1, "title": "Build landing page", "task_type": "development",
           "priority": "high", "assignee_user_id": 11},
    1001: {"task_number": 2, "title": "Fix login bug", "task_type": "bug",
           "priority": "high", "assignee_user_id": 12},
    1002: {"task_number": 3, "title": "Write docs", "task_type": "update",
           "priority": "low", "assignee_user_id": 11},
    1003: {"task_number": 4, "title": "Legacy task", "task_type": "maintenance",
           "priority": "medium", "assignee_user_id": 11},
    2000: {"task_number": 1, "title": "Answer ticket", "task_type": "maintenance",
           "priority": "medium", "assignee_user_id": 11},
}  # fmt: skip


def task_state(task_id: int, status: str) -> dict[str, Any]:
    return {
        **TASKS[task_id],
        "status": status,
        "legend": TASK_STATUS_LEGEND[status],
        "due_date": None,
        "estimated_hours": 4.0,
        "story_points": 3,
        "milestone_id": None,
    }


def time_log(
    time_log_id: int, started_at: datetime, seconds: int, *, billable: bool, approval: str
) -> dict[str, Any]:
    return {
        "time_log_id": time_log_id,
        "started_at": started_at,
        "ended_at": started_at + timedelta(seconds=seconds),
        "duration_seconds": seconds,
        "is_billable": billable,
        "approval_status": approval,
    }


def comment(comment_id: int, body: str) -> dict[str, Any]:
    return {"comment_id": comment_id, "body": body}


@dataclass
class Event:
    number: int
    event_type: str
    event_timestamp: datetime
    user_id: int
    project_id: int | None = None
    task_id: int | None = None
    payloads: dict[str, Any] = field(default_factory=dict)
    ingested_at: datetime | None = None  # None: 5 s after it happened
    client: str | None = None  # v2 field: web | mobile | api | email

    @property
    def event_id(self) -> str:
        return event_uuid(self.number)


def _e(number: int, event_type: str, when: datetime, user_id: int, **kwargs: Any) -> Event:
    payload_names = ("user_state", "project_state", "task_state", "time_log", "comment")
    payloads = {name: kwargs.pop(name) for name in payload_names if name in kwargs}
    return Event(number, event_type, when, user_id, payloads=payloads, **kwargs)


EVENTS: list[Event] = [
    # Monday 03-04 -------------------------------------------------------------------
    _e(1, "user_registered", at(4, "09:00"), 10, user_state=user_state(10)),
    _e(2, "user_invited", at(4, "09:30"), 10, user_state=user_state(11)),
    _e(3, "user_invited", at(4, "09:45"), 10, user_state=user_state(12)),
    _e(4, "project_created", at(4, "10:00"), 10, project_id=100,
       project_state=project_state(100)),
    # same payload as event 2 / 3: no new user state version
    _e(5, "project_member_added", at(4, "10:05"), 10, project_id=100,
       user_state=user_state(11)),
    _e(6, "project_member_added", at(4, "10:06"), 10, project_id=100,
       user_state=user_state(12)),
    _e(7, "task_created", at(4, "11:00"), 10, project_id=100, task_id=1000,
       task_state=task_state(1000, "New")),
    _e(8, "task_created", at(4, "12:00"), 10, project_id=100, task_id=1001,
       task_state=task_state(1001, "New")),
    # user 13 never appears in a user payload: an inferred member of dim_users
    _e(9, "user_logged_in", at(4, "13:00"), 13),
    # Tuesday 03-05 ------------------------------------------------------------------
    _e(10, "project_created", at(5, "09:00"), 11, project_id=200,
       project_state=project_state(200)),
    _e(11, "project_member_added", at(5, "09:05"), 11, project_id=200,
       user_state=user_state(10)),
    _e(12, "task_status_changed", at(5, "09:00"), 11, project_id=100, task_id=1000,
       task_state=task_state(1000, "Start")),
    # 1001 first closed 20 h after creation
    _e(13, "task_status_changed", at(5, "08:00"), 12, project_id=100, task_id=1001,
       task_state=task_state(1001, "Closed")),
    _e(14, "task_created", at(5, "10:00"), 11, project_id=100, task_id=1002,
       task_state=task_state(1002, "New")),
    _e(15, "task_created", at(5, "10:00"), 11, project_id=200, task_id=2000,
       task_state=task_state(2000, "New")),
    # delivered twice (see DUPLICATE_DELIVERIES)
    _e(16, "task_commented", at(5, "11:00"), 11, project_id=100, task_id=1000,
       comment=comment(5000, "Started on the hero section")),
    _e(17, "task_commented", at(5, "11:30"), 12, project_id=100, task_id=1000,
       comment=comment(5001, "Looks good")),
    _e(18, "timer_started", at(5, "10:30"), 12, project_id=100, task_id=1001),
    # 1.5 h non-billable
    _e(19, "timer_stopped", at(5, "12:00"), 12, project_id=100, task_id=1001,
       time_log=time_log(7000, at(5, "10:30"), 5400, billable=False, approval="pending")),
    _e(20, "task_status_changed", at(5, "15:00"), 11, project_id=100, task_id=1002,
       task_state=task_state(1002, "Resolved")),
    # 1000 first closed 30 h after creation
    _e(21, "task_status_changed", at(5, "17:00"), 11, project_id=100, task_id=1000,
       task_state=task_state(1000, "Closed")),
    # 2 h billable
    _e(22, "time_logged", at(5, "18:00"), 11, project_id=100, task_id=1000,
       time_log=time_log(7001, at(5, "09:00"), 7200, billable=True, approval="pending")),
    # Wednesday 03-06 ----------------------------------------------------------------
    _e(23, "user_role_changed", at(6, "10:00"), 10, user_state=user_state(11, role="admin")),
    _e(24, "task_status_changed", at(6, "09:00"), 11, project_id=100, task_id=1000,
       task_state=task_state(1000, "Opened")),
    # closed again: counts in tasks_closed on 03-06, not in the cycle time (first close)
    _e(25, "task_status_changed", at(6, "12:00"), 11, project_id=100, task_id=1000,
       task_state=task_state(1000, "Closed")),
    # 1002 first closed 30 h after creation
    _e(26, "task_status_changed", at(6, "16:00"), 11, project_id=100, task_id=1002,
       task_state=task_state(1002, "Closed")),
    # approving an entry logs no new hours
    _e(27, "time_entry_approved", at(6, "09:30"), 10, project_id=100, task_id=1000,
       time_log=time_log(7001, at(5, "09:00"), 7200, billable=True, approval="approved")),
    # Thursday 03-07 -----------------------------------------------------------------
    # happened on Tuesday, ingested on Thursday
    _e(28, "task_commented", at(5, "14:00"), 12, project_id=100, task_id=1002,
       comment=comment(5002, "Late note"), ingested_at=at(7, "09:00")),
    _e(29, "user_disabled", at(7, "17:00"), 10, user_state=user_state(12, is_active=False)),
    _e(30, "project_member_removed", at(7, "17:05"), 10, project_id=100,
       user_state=user_state(12, is_active=False)),
    # 2000 first closed 48 h after creation
    _e(31, "task_status_changed", at(7, "10:00"), 11, project_id=200, task_id=2000,
       task_state=task_state(2000, "Closed")),
    # 1003 was created before the lake's history: a closing without a cycle time
    _e(32, "task_status_changed", at(7, "11:00"), 11, project_id=100, task_id=1003,
       task_state=task_state(1003, "Closed")),
    # 0.5 h billable
    _e(33, "time_logged", at(7, "15:00"), 10, project_id=200, task_id=2000,
       time_log=time_log(7002, at(7, "14:00"), 1800, billable=True, approval="pending")),
    # Friday 03-08 -------------------------------------------------------------------
    _e(34, "project_archived", at(8, "12:00"), 11, project_id=200,
       project_state=project_state(200, status="archived")),
    _e(35, "user_logged_in", at(8, "08:00"), 10),
]  # fmt: skip

# Event 16 again: same payload, delivered later on another partition (Kafka redelivery).
DUPLICATE_DELIVERIES: list[tuple[int, datetime, int]] = [(16, at(5, "11:10"), 1)]

# Saturday's batch, ingested 03-09 (run_date 2024-03-09 with lookback_days 3 = 03-06..03-09).
LATE_EVENTS: list[Event] = [
    _e(36, "user_logged_in", at(9, "08:00"), 11, client="mobile"),
    # three days late: inside the lookback window
    _e(37, "task_commented", at(6, "15:00"), 10, project_id=100, task_id=1002,
       comment=comment(5003, "Three days late"), ingested_at=at(9, "08:30"), client="email"),
    # three days late, 1 h billable
    _e(38, "time_logged", at(6, "14:00"), 12, project_id=100, task_id=1002,
       time_log=time_log(7003, at(6, "13:00"), 3600, billable=True, approval="pending"),
       ingested_at=at(9, "08:31")),
]  # fmt: skip

# Five days late: outside the window of a run on 2024-03-09; only a full refresh picks it up.
TOO_LATE_EVENTS: list[Event] = [
    _e(39, "task_commented", at(4, "16:00"), 11, project_id=100, task_id=1001,
       comment=comment(5004, "Five days late"), ingested_at=at(9, "08:32")),
]  # fmt: skip


def _rows(events: Iterable[Event], offsets: itertools.count) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        ingested_at = event.ingested_at or event.event_timestamp + INGESTION_DELAY
        rows.append(_row(event, ingested_at, partition=0, offset=next(offsets)))
    return rows


def _row(event: Event, ingested_at: datetime, *, partition: int, offset: int) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "event_timestamp": event.event_timestamp,
        "company_id": COMPANY_ID,
        "user_id": event.user_id,
        "project_id": event.project_id,
        "task_id": event.task_id,
        "client": event.client,
        **event.payloads,
        "kafka_topic": TOPIC,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": ingested_at - timedelta(seconds=1),
        "schema_id": 1,
        "ingested_at": ingested_at,
    }


def _write_by_event_date(
    rows: list[dict[str, Any]], folder: Path, file_name: str, schema: pa.Schema
) -> None:
    by_date: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_date[row["event_timestamp"].date()].append(row)
    for event_date, date_rows in sorted(by_date.items()):
        partition = folder / f"event_date={event_date.isoformat()}"
        partition.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(date_rows, schema=schema), partition / file_name)


def write_lake(lake_root: Path) -> None:
    """The first week: EVENTS (+ one duplicate delivery), two dead letters, two batches."""
    offsets = itertools.count(100)
    rows = _rows(EVENTS, offsets)
    by_number = {event.number: event for event in EVENTS}
    for number, ingested_at, partition in DUPLICATE_DELIVERIES:
        rows.append(_row(by_number[number], ingested_at, partition=partition, offset=7))
    _write_by_event_date(
        rows, lake_root / "raw" / "events", "part-0.parquet", event_arrow_schema(1)
    )

    dead_letters = [
        {"reason": "undecodable", "error_detail": "bad magic byte", "raw_key": b"1",
         "raw_value": b"\x01garbage", "event_id": None, "schema_id": None,
         "kafka_topic": TOPIC, "kafka_partition": 0, "kafka_offset": 90,
         "kafka_timestamp": at(5, "10:00"), "ingested_at": at(5, "10:00")},
        {"reason": "event_too_old", "error_detail": "2019-01-01", "raw_key": b"1",
         "raw_value": b"\x00\x00\x00\x00\x01old", "event_id": event_uuid(900),
         "schema_id": 1, "kafka_topic": TOPIC, "kafka_partition": 0, "kafka_offset": 91,
         "kafka_timestamp": at(5, "10:01"), "ingested_at": at(5, "10:01")},
    ]  # fmt: skip
    dead_letter_folder = lake_root / "raw" / "_dead_letter" / "event_date=2024-03-05"
    dead_letter_folder.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(dead_letters, schema=DEAD_LETTER_SCHEMA),
        dead_letter_folder / "part-0.parquet",
    )

    # The event stream's batches 0 and 1 (batch 1 replayed after a crash: its first attempt
    # landed 1 row), and the change stream's batch 0: its own landing id, its own numbering.
    stamp = pa.timestamp("us", "UTC")
    metrics = pa.table(
        {
            "landing_id": pa.array(["events-a1", "events-a1", "events-a1", "appdb-c1"]),
            "batch_id": pa.array([0, 1, 1, 0], pa.int64()),
            "started_at": pa.array(
                [at(5, "10:00"), at(7, "08:59"), at(7, "09:00"), at(6, "12:00")], stamp
            ),
            "finished_at": pa.array(
                [at(5, "10:01"), at(7, "08:59"), at(7, "09:01"), at(6, "12:01")], stamp
            ),
            "duration_seconds": pa.array([4.5, 0.5, 1.25, 2.0]),
            "rows_in": pa.array([36, 1, 2, 5], pa.int64()),
            "rows_landed": pa.array([34, 1, 2, 5], pa.int64()),
            "rows_dead_lettered": pa.array([2, 0, 0, 0], pa.int64()),
            "end_offsets": pa.array(
                [
                    '{"events-raw": {"0": 136}}',
                    '{"events-raw": {"0": 137}}',
                    '{"events-raw": {"0": 138}}',
                    '{"orangescrum-appdb.orangescrum.projects": {"0": 5}}',
                ]
            ),
            "lag_total": pa.array([0, 1, 0, 0], pa.int64()),
        }
    )
    metrics_folder = lake_root / "raw" / "metrics"
    metrics_folder.mkdir(parents=True)
    pq.write_table(metrics, metrics_folder / "batch-0.parquet")


def write_deliveries(
    lake_root: Path, deliveries: Iterable[Delivery], file_name: str, first_offset: int
) -> int:
    """Simulated deliveries (ingestion.simulator) as one landed batch; returns the row count."""
    rows = [
        delivery.record
        | {
            "client": delivery.record.get("client"),
            "kafka_topic": TOPIC,
            "kafka_partition": 0,
            "kafka_offset": offset,
            "kafka_timestamp": delivery.delivered_at,
            "schema_id": 2,
            "ingested_at": delivery.delivered_at + INGESTION_DELAY,
        }
        for offset, delivery in enumerate(deliveries, start=first_offset)
    ]
    _write_by_event_date(rows, lake_root / "raw" / "events", file_name, event_arrow_schema())
    return len(rows)


def write_batch(lake_root: Path, events: list[Event], file_name: str) -> None:
    """A later micro-batch (LATE_EVENTS, TOO_LATE_EVENTS) into the event-date partitions."""
    rows = _rows(events, itertools.count(1000 + 10 * events[0].number))
    _write_by_event_date(rows, lake_root / "raw" / "events", file_name, event_arrow_schema())
