"""SparkSession for every job, configured from Settings (local[*] or a cluster master)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from py4j.protocol import Py4JError
from pyspark import SparkContext
from pyspark.sql import SparkSession

from orangescrum.core.jars import java, spark_connector_jars
from orangescrum.core.settings import Settings

LOG4J_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"


def build_session(settings: Settings, app_name: str) -> SparkSession:
    java()  # one clear sentence when Java is missing, instead of py4j's gateway error
    connector_jars = spark_connector_jars(settings.jar_cache_dir)
    # Workers must run this interpreter (the venv's), or they cannot import the project.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.driver.memory", "1g")
        # Spark's own Kafka source and spark-avro, resolved once into the project's Ivy
        # cache (`make setup`); on a cluster the driver serves them to the executors.
        .config("spark.jars", ",".join(str(jar) for jar in connector_jars))
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dlog4j.configurationFile={LOG4J_CONFIG.as_uri()}",
        )
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def stop_session(session: SparkSession) -> None:
    """Stop Spark, also when an interrupt broke the py4j connection it would stop through."""
    with contextlib.suppress(Py4JError):
        session.stop()


@contextlib.contextmanager
def spark_session(settings: Settings, app_name: str) -> Iterator[SparkSession]:
    """A SparkSession for one job, stopped afterwards unless it was already running.

    A CLI command or an Airflow task normally starts its own; when the process already hosts
    one (`dag.test()` inside a test session), the job shares it and leaves it running.
    """
    already_running = SparkContext._active_spark_context is not None
    session = build_session(settings, app_name)
    try:
        yield session
    finally:
        if not already_running:
            stop_session(session)
