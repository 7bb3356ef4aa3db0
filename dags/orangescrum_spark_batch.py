"""Daily Spark batch (Airflow), 02:00 UTC: compact yesterday, then rebuild it in the marts.

compact_yesterday   spark.compaction.compact_day for the day before the logical date:
                    raw/events/event_date=D -> processed/events/event_date=D (deduplicated,
                    few large files). A day with no raw file fails the run (the stream is down).
rebuild_marts       Cosmos task group: stg_orangescrum__events and everything downstream, one
                    `dbt build` task per model (its tests in the same dbt invocation, unit tests
                    left to CI), as of run_date=D, once D is closed: the lookback window ending at D
                    is rebuilt reproducibly (late events of D included), and backfills of a
                    date give the same tables. The dbt sources read raw_events (deduplicated in
                    staging); the order compaction -> marts keeps a switch to processed/ safe.
test_every_row      every data test over every row (--vars test_scope: all): the builds of
                    the day test only the rows they wrote (their latest load), so the night
                    checks the whole history once (unit tests run in CI, not here).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from orangescrum import airflow_support as support

settings = support.load_settings()


@dag(
    dag_id="orangescrum_spark_batch",
    schedule="0 2 * * *",
    dagrun_timeout=timedelta(hours=3),
    doc_md=__doc__,
    **support.dag_kwargs(
        tags=("spark", "batch", "dbt"),
        max_active_tasks=support.warehouse_max_active_tasks(settings),
    ),
)
def orangescrum_spark_batch() -> None:
    @task(execution_timeout=support.COMPACTION_TIMEOUT)
    def compact_yesterday() -> str:
        from spark.compaction import compact_day
        from spark.session import spark_session

        run_settings = support.load_settings()
        day = support.processing_day(get_current_context())
        with spark_session(run_settings, "orangescrum-compaction") as spark:
            compact_day(spark, run_settings, day)
        return day.isoformat()

    @task(pool=support.warehouse_pool(settings), execution_timeout=support.DBT_NODE_TIMEOUT)
    def test_every_row() -> dict[str, int]:
        from orangescrum.warehouse.dbt import run_dbt, status_counts

        run_settings = support.load_settings()
        result = run_dbt(
            run_settings,
            ["test", "--exclude-resource-type", "unit_test", "--vars", "{test_scope: all}"],
            target_path=support.dbt_target_path(run_settings, "spark_batch_tests"),
        )
        return status_counts(result)

    day = compact_yesterday()
    marts = support.dbt_task_group(
        "rebuild_marts",
        settings,
        select=["stg_orangescrum__events+"],
        dbt_vars={"run_date": "{{ ti.xcom_pull(task_ids='compact_yesterday') }}"},
        unit_tests=False,
    )
    day >> marts >> test_every_row()


orangescrum_spark_batch()
