"""Ingest (Airflow): every 15 minutes, drain Kafka into the lake and refresh raw_events.

stream_micro_run   Spark Structured Streaming with Trigger.AvailableNow: reads what is in the
                   events topic since the checkpoint, lands it in {lake}/raw/, then stops.
load_raw_events    `dbt run-operation create_raw_events`: (re)creates raw_events, dead letters
                   and pipeline metrics over the lake; publishes the lake Asset, which
                   schedules the dbt DAG (orangescrum_dbt).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from orangescrum import airflow_support as support

settings = support.load_settings()


@dag(
    dag_id="orangescrum_ingest",
    schedule="*/15 * * * *",
    dagrun_timeout=timedelta(minutes=14),
    doc_md=__doc__,
    **support.dag_kwargs(tags=("ingest", "kafka", "spark"), max_active_tasks=1),
)
def orangescrum_ingest() -> None:
    @task(execution_timeout=support.STREAM_TIMEOUT)
    def stream_micro_run() -> dict[str, int]:
        from orangescrum.core.broker import require_broker
        from spark.session import spark_session
        from spark.stream import run_stream

        run_settings = support.load_settings()
        require_broker(run_settings)
        with spark_session(run_settings, "orangescrum-ingest") as spark:
            totals = run_stream(spark, run_settings, available_now=True)
        return {
            "batches": totals.batches,
            "rows_in": totals.rows_in,
            "rows_landed": totals.rows_landed,
            "rows_dead_lettered": totals.rows_dead_lettered,
        }

    @task(
        outlets=[support.lake_asset(settings)],
        pool=support.warehouse_pool(settings),
        execution_timeout=support.WAREHOUSE_LOAD_TIMEOUT,
    )
    def load_raw_events() -> None:
        from orangescrum.warehouse.load import load_raw_events as create_raw_relations

        run_settings = support.load_settings()
        create_raw_relations(run_settings, support.dbt_target_path(run_settings, "ingest"))

    stream_micro_run() >> load_raw_events()


orangescrum_ingest()
