"""The two paths into the lake build the same marts on every column both can know.

One seeded history (one company, two days from 2025-03-03, seed 42) goes (a) through the
event path: the simulator's events produced to a topic, the Avro stream (available-now) into
lake A; and (b) through the database path as `orangescrum demo --source appdb` runs it: the
history written into MariaDB, Debezium's snapshot of the app's tables, the change stream into
lake B (the demo's own reconciliation with the database's rows must hold too). dbt builds the
marts on a DuckDB warehouse over each lake, and COMPARISONS says per mart which columns must
be equal and why the others cannot be. A snapshot is current state, not history: it knows
each row's creation and its current values, not what happened in between (spark/cdc.py's
docstring), which is what most exclusions below come down to.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from ingestion.feed import produce_history
from ingestion.simulator import SimulationConfig
from orangescrum.appdb_demo import AppDbDemoOptions, run_appdb_demo
from orangescrum.core.broker import LocalKafka
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from spark.stream import run_stream
from tests.appdb.test_connect import START
from tests.dbt.conftest import Warehouse, new_warehouse

pytestmark = pytest.mark.slow

# Two days, not test_connect's one: the second has a task deletion (an end state a snapshot
# keeps) and tasks closed a day after their creation.
HISTORY = SimulationConfig(seed=42, companies=1, days=2, start_date=START)
RUN_DATE = str(START + datetime.timedelta(days=HISTORY.days))

# Columns that say how and when the pipeline ran, not what happened in the app.
PIPELINE: Mapping[str, str] = {
    "event_id": "each path's own ids: the simulator's UUID4s, UUID5s over the changed row",
    "client_channel": "the app stores no channel: always null from the database",
    "ingested_at": "when each stream ran",
    "ingestion_delay_seconds": "when each stream ran",
    "is_late_arrival": "when each stream ran",
    "loaded_at": "when each dbt run ran",
}
SUBJECT_STANDS_IN = "the rows name no actor: the subject user stands in (spark/cdc.py)"
HISTORY_ONLY = "history: a snapshot knows a row's creation and current values only"


@dataclass(frozen=True)
class Comparison:
    """One mart's rows as both paths know them: every mart column is compared or excluded.

    Timestamps are compared at whole seconds (the app's DATETIME holds no fraction), doubles
    at 9 decimals (sums of the same values in another order). With `group_by`, the other
    compared columns are summed per group.
    """

    mart: str
    compared: tuple[str, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)
    where: str = "true"
    group_by: tuple[str, ...] = ()


def fact(compared: tuple[str, ...], where: str, **excluded: str) -> Comparison:
    return Comparison("fact_activities", compared, PIPELINE | excluded, where)


IDS = ("company_id", "user_id", "project_id", "task_id", "subject_user_id")
PAYLOAD_IDS = ("time_log_id", "comment_id", "milestone_id", "file_id")
WHEN = ("event_type", "event_category", "activity_date", "event_timestamp")
FACT_DETAILS = ("task_status", "time_log_approval_status", "logged_hours", "is_billable")
FACT_COLUMNS = (*WHEN, *IDS, *PAYLOAD_IDS, *FACT_DETAILS)


def fact_without(*columns: str) -> tuple[str, ...]:
    return tuple(column for column in FACT_COLUMNS if column not in columns)


# fact_activities: only the event types a snapshot gives (a row's creation, or the end state
# it reached); status changes, updates, assignments, moves, approvals and uploads are history.
COMPARISONS: Mapping[str, Comparison] = {
    "fact_activities: time logs": fact(
        fact_without("time_log_approval_status"),
        "event_type in ('time_logged', 'timer_stopped')",
        time_log_approval_status="a snapshot's time log carries its current approval, the "
        "event pending",
    ),
    "fact_activities: tasks": fact(
        fact_without("project_id", "task_status"),
        "event_type in ('task_created', 'task_deleted')",
        project_id="a snapshot holds a task's current project: a moved task's creation lands "
        "in the project it moved to",
        task_status="a snapshot's task_created carries the task's current status",
    ),
    "fact_activities: comments": fact(
        fact_without("project_id", "task_status"),
        "event_type = 'task_commented'",
        project_id="replies move with their task: a snapshot holds the current project",
        task_status="a snapshot's comment carries its task's current state, as its "
        "task_created does: a comment with its task_id is a state of that task, often its "
        "latest in a snapshot",
    ),
    "fact_activities: projects and milestones": fact(
        FACT_COLUMNS, "event_type in ('project_created', 'project_archived', 'milestone_created')"
    ),
    "fact_activities: people": fact(
        fact_without("user_id"),
        "event_type in "
        "('user_registered', 'user_invited', 'user_disabled', 'project_member_added')",
        user_id=SUBJECT_STANDS_IN,
    ),
    "dim_tasks": Comparison(
        "dim_tasks",
        (
            "task_id",
            "company_id",
            "project_id",
            "task_number",
            "task_title",
            "task_type",
            "task_priority",
            "task_status",
            "task_status_legend",
            "task_assignee_user_id",
            "task_due_date",
            "task_story_points",
            "task_estimated_hours",
            "task_milestone_id",
            "is_inferred_member",
            "created_at",
            "first_event_at",
        ),
        {
            "state_version_count": HISTORY_ONLY,
            "first_closed_at": HISTORY_ONLY,
            "cycle_time_hours": HISTORY_ONLY + " (when the task closed)",
            "state_valid_from": HISTORY_ONLY + " (when the current state began)",
            "loaded_at": PIPELINE["loaded_at"],
        },
    ),
    "dim_projects": Comparison(
        "dim_projects",
        (
            "project_id",
            "company_id",
            "owner_user_id",
            "project_name",
            "project_short_name",
            "project_type",
            "project_status",
            "member_count",
            "estimated_hours",
            "is_inferred_member",
            "is_unknown_member",
            "start_date",
            "end_date",
            "created_at",
            "archived_at",
            "first_activity_at",
        ),
        {
            "task_count": "the event path also counts a moved task in the project it left",
            "state_version_count": HISTORY_ONLY,
            "state_valid_from": HISTORY_ONLY + " (when the current state began)",
            "last_activity_at": HISTORY_ONLY + " (the project's latest event)",
        },
    ),
    "dim_users": Comparison(
        "dim_users",
        (
            "user_id",
            "company_id",
            "user_initials",
            "user_email_hash",
            "user_type",
            "user_role",
            "is_active",
            "user_timezone",
            "is_inferred_member",
            "is_unknown_member",
            "registered_at",
            "user_created_at",
            "disabled_at",
        ),
        {
            "state_version_count": HISTORY_ONLY,
            "state_valid_from": HISTORY_ONLY + " (when the current state began)",
            "first_activity_at": "a login may come first: logins are not in the database",
            "last_activity_at": HISTORY_ONLY + " (the user's latest event)",
            "last_login_at": "logins are not in the database (users keeps only the last one)",
        },
    ),
    "dim_companies": Comparison(
        "dim_companies",
        ("company_id", "user_count", "enabled_user_count", "project_count", "first_activity_at"),
        {
            "last_activity_at": HISTORY_ONLY + " (the company's latest event)",
        },
    ),
    "fact_time_entries": Comparison(
        "fact_time_entries",
        (
            "time_log_id",
            "user_id",
            "company_id",
            "project_id",
            "task_id",
            "logged_date",
            "logged_at",
            "started_at",
            "ended_at",
            "logged_hours",
            "is_billable",
        ),
        dict.fromkeys(
            (
                "approval_status",
                "decided_at",
                "decided_by_user_id",
                "approved_hours",
                "rejected_hours",
                "pending_hours",
            ),
            "decisions are history: the mart reads approval events, a snapshot has none",
        )
        | {"loaded_at": PIPELINE["loaded_at"]},
    ),
    "agg_daily_metrics: per company": Comparison(
        "agg_daily_metrics",
        (
            "activity_date",
            "company_id",
            "tasks_created_count",
            "comment_count",
            "billable_hours_logged",
            "non_billable_hours_logged",
        ),
        {
            "project_id": "summed over projects: a snapshot books a moved task's creation and "
            "replies in its current project",
            "event_count": "logins, timer starts and every change after a creation are not in "
            "a snapshot",
            "active_user_count": "logins, timer starts and every change after a creation are "
            "not in a snapshot",
            "tasks_closed_count": HISTORY_ONLY + " (when tasks closed)",
            "median_task_cycle_time_hours": HISTORY_ONLY + " (when tasks closed)",
            "loaded_at": PIPELINE["loaded_at"],
        },
        group_by=("activity_date", "company_id"),
    ),
    "agg_daily_metrics: hours per project": Comparison(
        "agg_daily_metrics",
        (
            "activity_date",
            "company_id",
            "project_id",
            "billable_hours_logged",
            "non_billable_hours_logged",
        ),
        {
            "event_count": "see the per-company comparison",
            "active_user_count": "see the per-company comparison",
            "tasks_created_count": "a moved task's creation: compared per company",
            "comment_count": "a moved task's replies: compared per company",
            "tasks_closed_count": HISTORY_ONLY,
            "median_task_cycle_time_hours": HISTORY_ONLY,
            "loaded_at": PIPELINE["loaded_at"],
        },
        where="billable_hours_logged + non_billable_hours_logged > 0",
    ),
}


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """The event path's broker (the database path's demo runs its own)."""
    settings = Settings(_env_file=None)
    with LocalKafka.from_settings(settings, tmp_path_factory.mktemp("event-broker")) as broker:
        yield broker


def column_types(warehouse: Warehouse, mart: str) -> dict[str, str]:
    described = warehouse.query(f"describe orangescrum_dw_marts.{mart}")
    return {name: kind for name, kind, *_ in described}


def comparison_sql(comparison: Comparison, types: Mapping[str, str]) -> str:
    def value(column: str) -> str:
        kind = types[column]
        if kind.startswith("TIMESTAMP"):
            return f"date_trunc('second', {column})"
        if kind == "DOUBLE":
            return f"round({column}, 9)"
        return column

    if not comparison.group_by:
        selected = ", ".join(value(column) for column in comparison.compared)
        return (
            f"select {selected} from orangescrum_dw_marts.{comparison.mart} "
            f"where {comparison.where}"
        )
    sums = [
        f"round(sum({column}), 9)" if types[column] == "DOUBLE" else f"sum({column})"
        for column in comparison.compared
        if column not in comparison.group_by
    ]
    keys = ", ".join(comparison.group_by)
    return (
        f"select {keys}, {', '.join(sums)} from orangescrum_dw_marts.{comparison.mart} "
        f"where {comparison.where} group by {keys}"
    )


def build_marts(root: Path) -> Warehouse:
    """The compared marts (and what they read) on a fresh DuckDB warehouse over root/lake."""
    warehouse = new_warehouse(root)
    warehouse.dbt("run-operation", "create_raw_events", run_date=RUN_DATE)
    compared = sorted({f"+{comparison.mart}" for comparison in COMPARISONS.values()})
    warehouse.dbt("run", "--select", *compared, run_date=RUN_DATE)
    return warehouse


def test_the_database_path_builds_the_marts_the_event_path_builds(
    kafka: LocalKafka, spark, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # (a) the event path: the history as events on a topic, the Avro stream into lake A
    events_root = tmp_path_factory.mktemp("event-path")
    event_settings = new_warehouse(events_root).settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka.bootstrap,
            "max_event_age_days": 36500,  # the history's fixed dates are older than the limit
        }
    )
    create_topics(event_settings)
    produced = produce_history(event_settings, HISTORY)
    streamed = run_stream(spark, event_settings, available_now=True)
    assert (streamed.rows_landed, streamed.rows_dead_lettered) == (produced.events, 0)

    # (b) the database path, as `orangescrum demo --source appdb` runs it: the history written
    # into MariaDB, Debezium's snapshot, the change stream into lake B, dbt; it raises unless
    # each event type's rows in fact_activities equal the database rows that give it
    database_root = tmp_path_factory.mktemp("database-path")
    demo = run_appdb_demo(
        new_warehouse(database_root).settings,
        AppDbDemoOptions(
            days=HISTORY.days,
            seed=HISTORY.seed,
            companies=HISTORY.companies,
            start_date=HISTORY.start_date,
        ),
        Console(quiet=True),
    )
    assert demo.problems == []
    assert demo.streamed.rows_dead_lettered == 0
    assert demo.streamed.rows_landed == sum(demo.expected.values()) > 0

    warehouses = {"events": build_marts(events_root), "database": build_marts(database_root)}
    unaccounted: dict[str, set[str]] = {}  # a mart column neither compared nor excluded
    empty: list[str] = []  # a comparison that compares no row proves nothing
    differences: dict[str, dict[str, list[str]]] = {}
    for name, comparison in COMPARISONS.items():
        types = column_types(warehouses["events"], comparison.mart)
        unknown = set(types) ^ (set(comparison.compared) | set(comparison.excluded))
        if unknown:
            unaccounted[name] = unknown
            continue
        sql = comparison_sql(comparison, types)
        rows = {path: Counter(warehouse.query(sql)) for path, warehouse in warehouses.items()}
        if not rows["events"]:
            empty.append(name)
        if rows["events"] != rows["database"]:
            differences[name] = {
                "only_events": sorted(map(str, rows["events"] - rows["database"])),
                "only_database": sorted(map(str, rows["database"] - rows["events"])),
            }
    assert (unaccounted, empty, differences) == ({}, [], {})
