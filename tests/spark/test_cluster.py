"""The streaming job on a Spark standalone master + worker, selected by ORANGESCRUM_SPARK_MASTER."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from orangescrum.core.topics import create_topics
from spark.cluster import LocalSparkCluster
from tests.spark.test_stream import produce_events

pytestmark = pytest.mark.slow


def test_stream_runs_on_a_standalone_cluster(kafka_settings, tmp_path) -> None:
    create_topics(kafka_settings)
    produced = produce_events(kafka_settings, 2_000)
    with LocalSparkCluster.from_settings(
        kafka_settings, tmp_path / "spark-logs", workers=1, cores_per_worker=2
    ) as cluster:
        env = os.environ | {
            "ORANGESCRUM_SPARK_MASTER": cluster.master_url,
            "ORANGESCRUM_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.kafka_bootstrap_servers,
            "ORANGESCRUM_TOPIC_EVENTS": kafka_settings.topic_events,
            "ORANGESCRUM_TOPIC_DEAD_LETTER": kafka_settings.topic_dead_letter,
            "ORANGESCRUM_DATA_DIR": str(kafka_settings.data_dir),
        }
        result = subprocess.run(
            [sys.executable, "-m", "orangescrum", "stream", "--available-now"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        # The work ran on the worker: its executor logs exist.
        assert list((tmp_path / "spark-logs").glob("worker-0.log"))
    with duckdb.connect() as connection:
        landed = connection.execute(
            f"select event_id from read_parquet('{kafka_settings.lake.raw_events}/*/*.parquet')"
        ).fetchall()
    assert sorted(row[0] for row in landed) == sorted(produced)
