"""The ingest DAG's Kafka task on a SASL_SSL broker, configured the way Airflow's tasks are.

`stream_micro_run` is the one task of the four DAGs that talks to Kafka (the batch DAG compacts
the lake, maintenance reads the lake's dead letters, dbt reads the warehouse). Its settings
come from `support.load_settings()` in the task itself: ORANGESCRUM_* variables, then the `.env`
of the working directory. Here the stream user's env file, as `broker start --security sasl_ssl`
wrote it, is that `.env`; only the data dir and Spark's master come from the environment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from ingestion.faults import BAD_KINDS
from ingestion.feed import produce_history
from ingestion.simulator import SimulationConfig
from orangescrum.core.broker import LocalKafka
from orangescrum.core.kafka_security import ADMIN, PRODUCER, STREAM, Security
from orangescrum.core.settings import Settings
from orangescrum.core.topics import create_topics
from tests.conftest import last_weeks_monday
from tests.dags.conftest import DAGS_FOLDER, environment, run_dag

pytestmark = pytest.mark.slow


def message_count(settings: Settings, topic: str) -> int:
    """Messages in `topic` (end minus start offsets), read as `settings`' user."""
    consumer = Consumer(settings.kafka_client_config() | {"group.id": "orangescrum-test-count"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def test_the_ingest_stream_task_reads_a_sasl_ssl_broker_with_settings_from_env_and_dotenv(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    data_dir = tmp_path / "state"
    with LocalKafka.from_settings(
        Settings(_env_file=None), tmp_path / "kafka-sasl-ssl", security=Security.SASL_SSL
    ) as kafka:
        secrets = kafka.secrets
        assert secrets is not None
        local = Settings(data_dir=data_dir, _env_file=None)
        admin = secrets.user_settings(local, kafka.bootstrap, ADMIN)
        create_topics(admin)
        report = produce_history(
            secrets.user_settings(local, kafka.bootstrap, PRODUCER),
            SimulationConfig(seed=5, companies=1, days=1, start_date=last_weeks_monday()),
            dict.fromkeys(BAD_KINDS, 1),
        )
        bad = sum(report.bad_by_kind.values())

        workdir = tmp_path / "airflow-task-cwd"
        workdir.mkdir()
        shutil.copyfile(secrets.env_file(STREAM), workdir / ".env")
        monkeypatch.chdir(workdir)
        env = {"ORANGESCRUM_DATA_DIR": str(data_dir), "ORANGESCRUM_SPARK_MASTER": "local[2]"}
        with environment(env):
            dag = DagBag(dag_folder=str(DAGS_FOLDER / "orangescrum_ingest.py")).get_dag(
                "orangescrum_ingest"
            )
        # Only the Kafka task runs; the raw_events refresh after it is dbt on the lake.
        result = run_dag(dag, env, mark_success_pattern=r"^load_raw_events$")

        assert result.state == "success", result.failed_tasks
        streamed = result.xcoms["stream_micro_run"]
        assert streamed["rows_in"] == report.events + bad
        assert streamed["rows_landed"] == report.events
        assert streamed["rows_dead_lettered"] == bad
        # The dead letters went back to Kafka through the stream user's DLQ producer.
        assert message_count(admin, admin.topic_dead_letter) == bad
    assert list(Path(local.lake.raw_events).glob("event_date=*/*.parquet"))
