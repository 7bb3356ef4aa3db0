"""Every DAG run end to end with `dag.test()` on the local stack, and a failing dbt test."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from orangescrum import airflow_support as support
from tests.dags.conftest import DagRunResult, Pipeline, environment, run_dag

pytestmark = pytest.mark.slow

MARTS = "orangescrum_dw_marts"


def query(pipeline: Pipeline, sql: str) -> list[tuple[Any, ...]]:
    # The DAG tasks ran dbt-duckdb in this process and it may still hold the file: connect
    # with the same (default) configuration, not read_only, or DuckDB refuses the handle.
    with duckdb.connect(str(pipeline.settings().duckdb_file)) as connection:
        return connection.execute(sql).fetchall()


def raw_days(pipeline: Pipeline) -> list[date]:
    folders = Path(pipeline.settings().lake.raw_events).glob("event_date=*")
    return sorted(date.fromisoformat(folder.name.split("=")[1]) for folder in folders)


def test_ingest_streams_kafka_into_the_lake_and_refreshes_raw_events(
    pipeline: Pipeline, ingest_run: DagRunResult
) -> None:
    assert ingest_run.state == "success", ingest_run.failed_tasks
    streamed = ingest_run.xcoms["stream_micro_run"]
    assert streamed["rows_in"] == pipeline.produced_events + pipeline.bad_messages
    assert streamed["rows_dead_lettered"] == pipeline.bad_messages
    # Every delivery, duplicates included, is in raw_events; bad messages are dead letters.
    assert query(pipeline, "select count(*) from orangescrum_dw.raw_events") == [
        (pipeline.produced_events,)
    ]
    assert query(pipeline, "select count(*) from orangescrum_dw.raw_dead_letters") == [
        (pipeline.bad_messages,)
    ]


def test_dbt_dag_builds_every_model_and_passes_every_test(
    pipeline: Pipeline, dbt_run: DagRunResult
) -> None:
    assert dbt_run.state == "success", dbt_run.failed_tasks
    assert dbt_run.failed_tasks == []
    assert "source_freshness" in dbt_run.task_states
    assert len(dbt_run.task_states) > 23  # 23 models' builds + detached tests + freshness
    # Duplicate deliveries stop at staging: one fact row per distinct event.
    assert query(
        pipeline, f"select count(*), count(distinct event_id) from {MARTS}.fact_activities"
    ) == [(pipeline.unique_events, pipeline.unique_events)]


def test_spark_batch_compacts_yesterday_and_rebuilds_the_marts(
    pipeline: Pipeline, dags: Any, dbt_run: DagRunResult
) -> None:
    day = raw_days(pipeline)[-1]
    # The 02:00 run of the day after: its logical date's yesterday is `day`.
    logical_date = datetime.combine(day + timedelta(days=1), time(2), tzinfo=UTC)
    result = run_dag(
        dags.get_dag("orangescrum_spark_batch"), pipeline.env, logical_date=logical_date
    )

    assert result.state == "success", result.failed_tasks
    assert result.xcoms["compact_yesterday"] == day.isoformat()
    processed = Path(pipeline.settings().lake.processed_events) / f"event_date={day}"
    assert sorted(path.name for path in processed.iterdir()) == [
        "_compaction.json",
        "part-00000.parquet",
    ]
    assert result.task_states["rebuild_marts.agg_daily_metrics_model_build"] == "success"
    # then every data test over every row: all pass, no unit test among them
    every_row = result.xcoms["test_every_row"]
    assert set(every_row) == {"pass"} and every_row["pass"] > 50
    assert query(pipeline, f"select count(distinct event_id) from {MARTS}.fact_activities") == [
        (pipeline.unique_events,)
    ]


def test_maintenance_reports_dead_letters_and_prunes_only_old_state(
    pipeline: Pipeline, dags: Any, ingest_run: DagRunResult
) -> None:
    settings = pipeline.settings()
    # One day past the retention the CLI's cleanup uses too (ORANGESCRUM_METRICS_RETENTION_DAYS).
    stale_days = settings.metrics_retention_days + 1
    stale_moment = (datetime.now(UTC) - timedelta(days=stale_days)).timestamp()
    old_log = settings.log_dir / "old-job.log"
    old_log.parent.mkdir(parents=True, exist_ok=True)
    old_log.write_text("stale\n")
    abandoned = Path(settings.checkpoint_root) / "renamed-query"
    (abandoned / "offsets").mkdir(parents=True)
    (abandoned / "offsets" / "0").write_text("v1\n")
    for path in (old_log, abandoned / "offsets" / "0", abandoned / "offsets", abandoned):
        os.utime(path, (stale_moment, stale_moment))
    live = Path(settings.checkpoint_root) / "events-raw-to-lake"
    assert live.is_dir()

    result = run_dag(dags.get_dag("orangescrum_maintenance"), pipeline.env)

    assert result.state == "success", result.failed_tasks
    # Raw days are days old, far inside the 30-day retention: nothing to archive.
    assert result.xcoms["archive_raw_partitions"] == []
    dead_letters = result.xcoms["dead_letter_report"]
    assert sum(dead_letters.values()) == pipeline.bad_messages
    assert dead_letters["timestamp_out_of_range"] == 2  # far future + far past
    assert result.xcoms["cleanup"]["log_files"] == 1
    assert result.xcoms["cleanup"]["checkpoints"] == 1
    assert not old_log.exists() and not abandoned.exists()
    assert (live / "offsets").is_dir()  # the live stream's checkpoint is never touched


def registered(dag: Any) -> Any:
    """Store a DAG built in the test (not in dags/) in the metadata DB, as dag.test() needs."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    dag.fileloc = __file__
    bag = DagBag(dag_folder=str(Path(__file__).parent / "no-dags-here"))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag


def failing_project(pipeline: Pipeline, root: Path) -> tuple[Path, Path]:
    """A copy of the dbt project with a singular test that always fails, and its manifest."""
    from dbt.cli.main import dbtRunner

    project = root / "dbt_project"
    shutil.copytree(
        pipeline.settings().dbt_project_dir,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    (project / "tests" / "assert_deliberately_failing.sql").write_text(
        "-- Returns every event: a singular test fails when it returns rows.\n"
        "select event_id from {{ ref('stg_orangescrum__events') }}\n"
    )
    settings = pipeline.settings()
    with environment(settings.dbt_env()):
        parsed = dbtRunner().invoke(
            [
                "parse",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(settings.dbt_profiles_dir),
                "--target-path",
                str(root / "target"),
            ]
        )
    assert parsed.success, parsed.exception
    return project, root / "target" / "manifest.json"


def test_a_failing_dbt_test_fails_its_task_and_the_run(
    pipeline: Pipeline, ingest_run: DagRunResult, tmp_path: Path
) -> None:
    project, manifest = failing_project(pipeline, tmp_path)
    with environment(pipeline.env):
        dag = support.dbt_dag(
            "orangescrum_dbt_failing_test",
            schedule=None,
            settings=pipeline.settings(),
            project_dir=project,
            manifest=manifest,
            select=["stg_orangescrum__events"],
            default_args=support.default_args(retries=0),
        )
    result = run_dag(registered(dag), pipeline.env)

    assert result.state == "failed"
    # The model's build ran the model, then its tests: the failing one fails the task.
    assert result.task_states == {
        "source_freshness": "success",
        "stg_orangescrum__events_model_build": "failed",
    }
