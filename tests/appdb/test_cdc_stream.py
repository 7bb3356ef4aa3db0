"""The change stream end to end: MariaDB -> Debezium -> Spark (`kafka` source) -> the lake.

A real broker, MariaDB and Connect worker (tests/appdb/test_connect.py's `stack`, one of each
for the module): a simulated day is snapshot into the table topics, the stream drains them
(available-now) into a fresh lake, and every event type's count is checked against what the
database holds; then a live status change arrives as exactly one more event, and a rerun lands
nothing.
"""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from orangescrum.core.appdb.connection import connect
from orangescrum.core.settings import Settings
from spark.cdc_stream import run_cdc_stream
from tests.appdb.test_connect import (  # noqa: F401  (stack: the module's servers)
    Stack,
    execute,
    first_task,
    row_counts,
    stack,
    wait_for_counts,
)

pytestmark = pytest.mark.slow


def query(settings: Settings, sql: str) -> int:
    connection = connect(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def expected_counts(settings: Settings) -> Counter[str]:
    """What the database holds, as the events the mapping promises for a snapshot."""
    tasks = "easycases WHERE istype = 1"
    counts = {
        "task_created": f"SELECT COUNT(*) FROM {tasks}",
        "task_deleted": f"SELECT COUNT(*) FROM {tasks} AND isactive = 0",
        "task_commented": "SELECT COUNT(*) FROM easycases WHERE istype = 2",
        "user_registered": "SELECT COUNT(*) FROM company_users WHERE user_type = 1",
        "user_invited": "SELECT COUNT(*) FROM company_users WHERE user_type <> 1",
        "user_disabled": "SELECT COUNT(*) FROM company_users WHERE is_active = 0",
        "project_created": "SELECT COUNT(*) FROM projects",
        "project_archived": "SELECT COUNT(*) FROM projects WHERE isactive = 0",
        "project_member_added": "SELECT COUNT(*) FROM project_users",
        "time_logged": "SELECT COUNT(*) FROM log_times WHERE is_from_timer = 0",
        "timer_stopped": "SELECT COUNT(*) FROM log_times WHERE is_from_timer = 1",
        "milestone_created": "SELECT COUNT(*) FROM milestones",
    }
    return Counter({event_type: query(settings, sql) for event_type, sql in counts.items()})


def lake_events(settings: Settings) -> list[dict]:
    folder = Path(settings.lake.raw_events)
    if not folder.exists():
        return []
    dataset = ds.dataset(folder, format="parquet", partitioning="hive")
    return dataset.to_table(columns=["event_id", "event_type", "task_id", "task_state"]).to_pylist()


def dead_letter_files(settings: Settings) -> list[Path]:
    return sorted(Path(settings.lake.dead_letters).rglob("*.parquet"))


@pytest.fixture(scope="module")
def lake_settings(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Settings:  # noqa: F811
    state = tmp_path_factory.mktemp("cdc-lake")
    return stack.settings.model_copy(
        update={"lake_uri": str(state / "lake"), "checkpoint_dir": str(state / "checkpoints")}
    )


def test_the_snapshot_lands_one_event_per_row_and_state_and_a_live_change_lands_once(
    stack: Stack,  # noqa: F811
    lake_settings: Settings,
    spark,
) -> None:
    settings = lake_settings
    rows = row_counts(settings)
    topics = wait_for_counts(settings, rows)  # the snapshot is in the topics

    totals, silent = run_cdc_stream(spark, settings, available_now=True)
    landed = lake_events(settings)
    expected = +expected_counts(settings)
    assert Counter(row["event_type"] for row in landed) == expected
    assert totals.rows_landed == sum(expected.values()) == len(landed)
    assert (totals.rows_dead_lettered, dead_letter_files(settings)) == (0, [])
    assert len({row["event_id"] for row in landed}) == len(landed)
    # rows of the silent tables, and case_files (a snapshot cannot date an upload)
    assert silent == sum(
        rows[table]
        for table in ("companies", "users", "case_activities", "easycase_milestones", "case_files")
    )

    # a live status change, as the app makes it: the new legend, who, and the touch time
    task_id, legend = first_task(settings)
    new_legend = 3 if legend != 3 else 5
    before = row_counts(settings)
    execute(
        settings,
        (
            "UPDATE easycases SET legend = %s, updated_by = 1, dt_created = %s WHERE id = %s",
            (new_legend, datetime.datetime(2025, 3, 4, 9, 30), task_id),
        ),
    )
    wait_for_counts(settings, {"easycases": topics["easycases"] + 1})
    totals, silent = run_cdc_stream(spark, settings, available_now=True)
    assert (totals.rows_landed, totals.rows_dead_lettered, silent) == (1, 0, 0)
    after = lake_events(settings)
    (new,) = [row for row in after if row["event_id"] not in {r["event_id"] for r in landed}]
    assert (new["event_type"], new["task_id"], new["task_state"]["legend"]) == (
        "task_status_changed",
        task_id,
        new_legend,
    )
    assert row_counts(settings) == before  # an update: no new rows

    # exactly once: a rerun has nothing to read and lands nothing
    totals, silent = run_cdc_stream(spark, settings, available_now=True)
    assert (totals.rows_landed, totals.rows_dead_lettered, silent) == (0, 0, 0)
    assert len(lake_events(settings)) == len(after)
