"""SparkSession for every job, configured from Settings (local[*] or a cluster master)."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from py4j.protocol import Py4JError
from pyspark import SparkContext
from pyspark.sql import SparkSession

from orangescrum.core.jars import gcs_connector_jars, java, spark_connector_jars
from orangescrum.core.settings import Settings

LOG4J_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"
DRIVER_MEMORY = "1g"
GCS_FILESYSTEM = "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem"
GCS_ABSTRACT_FILESYSTEM = "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"
MIB = 1024 * 1024
# Hadoop 3.5's core-default.xml has defaults for Hadoop's own gs:// module (not in pyspark's
# wheel) written with unit suffixes ("64m"), which Google's connector fails to parse as
# numbers: the same sizes (Google's defaults too) in bytes.
GCS_SIZES = {
    "fs.gs.block.size": 64 * MIB,
    "fs.gs.rewrite.max.chunk.size": 512 * MIB,
    "fs.gs.outputstream.buffer.size": 8 * MIB,
    "fs.gs.inputstream.inplace.seek.limit": 8 * MIB,
    "fs.gs.inputstream.min.range.request.size": 2 * MIB,
}


def uses_gcs(settings: Settings) -> bool:
    """Whether the lake or the stream's checkpoints live on gs://."""
    return any(uri.startswith("gs://") for uri in (settings.lake_root, settings.checkpoint_root))


def gcs_hadoop_options(settings: Settings) -> dict[str, str]:
    """Spark options that make gs:// Google's Hadoop connector (empty when nothing is on GCS).

    Production leaves ORANGESCRUM_GCS_ENDPOINT empty: Application Default Credentials (the VM's
    service account on Dataproc and GCE, GOOGLE_APPLICATION_CREDENTIALS elsewhere) against
    Google's endpoint. An endpoint means an emulator, which takes no credentials.
    """
    if not uses_gcs(settings):
        return {}
    options = {
        "fs.gs.impl": GCS_FILESYSTEM,
        # Version 2 commits a task by renaming its files, never a folder: a folder rename on
        # GCS is a copy of every object (twice over with version 1). A job's files appear as
        # its tasks commit, which is safe here: every job writes a staging folder that is
        # published afterwards (compaction's swap, the stream's renames in gcs_landing.py).
        "mapreduce.fileoutputcommitter.algorithm.version": "2",
        # Structured Streaming writes its checkpoint through Hadoop's FileContext API.
        "fs.AbstractFileSystem.gs.impl": GCS_ABSTRACT_FILESYSTEM,
    } | {key: str(size) for key, size in GCS_SIZES.items()}
    if settings.gcs_endpoint:
        options |= {
            "fs.gs.storage.root.url": settings.gcs_endpoint.rstrip("/") + "/",
            "fs.gs.auth.type": "UNAUTHENTICATED",
            # fake-gcs-server has no objects.move call; copy + delete does the same there.
            "fs.gs.operation.move.enable": "false",
            # Nor the storageLayout call the connector makes before a delete (does the bucket
            # have hierarchical-namespace folders?): every delete would fail, silently (false).
            "fs.gs.hierarchical.namespace.folders.enable": "false",
        }
    else:
        # Hadoop's own default is COMPUTE_ENGINE, which works on Google's VMs only.
        options["fs.gs.auth.type"] = "APPLICATION_DEFAULT"
    return {f"spark.hadoop.{key}": value for key, value in options.items()}


def driver_java_options(*, long_running: bool, extra: Sequence[str] = ()) -> str:
    """The driver JVM's options. A long-running stream commits its whole heap at start
    (-Xms = -Xmx, pages touched): its RSS is then flat from the first minute instead of
    creeping toward the heap limit for an hour, so a growing RSS means a real leak. `extra`
    (ORANGESCRUM_JVM_OPTIONS) comes last, so the last of a JVM option, the user's, wins."""
    options = [f"-Dlog4j.configurationFile={LOG4J_CONFIG.as_uri()}"]
    if long_running:
        options += [f"-Xms{DRIVER_MEMORY}", "-XX:+AlwaysPreTouch"]
    # Spark splits the string like a shell, so an option with a space stays one.
    return shlex.join([*options, *extra])


def build_session(settings: Settings, app_name: str, *, long_running: bool = False) -> SparkSession:
    java()  # one clear sentence when Java is missing, instead of py4j's gateway error
    connector_jars = spark_connector_jars(settings.jar_cache_dir)
    if uses_gcs(settings):
        # Only then: a 40 MB jar every executor would fetch. Spark puts spark.jars after the
        # cluster's own classpath, so on Dataproc the image's connector is the one loaded.
        connector_jars += gcs_connector_jars(settings.jar_cache_dir)
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
        .config("spark.driver.memory", DRIVER_MEMORY)
        # Spark's own Kafka source and spark-avro, resolved once into the project's Ivy
        # cache (`make setup`); on a cluster the driver serves them to the executors.
        .config("spark.jars", ",".join(str(jar) for jar in connector_jars))
        .config(
            "spark.driver.extraJavaOptions",
            driver_java_options(long_running=long_running, extra=settings.jvm_arguments),
        )
    )
    for key, value in gcs_hadoop_options(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def stop_session(session: SparkSession) -> None:
    """Stop Spark, also when an interrupt broke the py4j connection it would stop through."""
    with contextlib.suppress(Py4JError):
        session.stop()


@contextlib.contextmanager
def spark_session(
    settings: Settings, app_name: str, *, long_running: bool = False
) -> Iterator[SparkSession]:
    """A SparkSession for one job, stopped afterwards unless it was already running.

    A CLI command or an Airflow task normally starts its own; when the process already hosts
    one (`dag.test()` inside a test session), the job shares it and leaves it running.
    """
    already_running = SparkContext._active_spark_context is not None
    session = build_session(settings, app_name, long_running=long_running)
    try:
        yield session
    finally:
        if not already_running:
            stop_session(session)
