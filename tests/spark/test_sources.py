"""One switch picks the Kafka source; both feed the same downstream columns."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from orangescrum.errors import OrangeScrumError
from orangescrum.settings import Settings, SparkSource
from spark.kafka_source import SOURCE_NAME
from spark.stream import kafka_source_options, read_kafka


def test_python_source_options(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"kafka_bootstrap_servers": "broker:9092", "max_events_per_batch": 5000}
    )
    source_format, options = kafka_source_options(configured)
    assert source_format == SOURCE_NAME
    assert options == {
        "kafka.bootstrap.servers": "broker:9092",
        "kafka.security.protocol": "PLAINTEXT",
        "subscribe": "events-raw",
        "maxoffsetspertrigger": "5000",
    }


def test_native_source_options_for_a_sasl_ssl_cluster(settings: Settings) -> None:
    production = settings.model_copy(
        update={
            "spark_source": SparkSource.NATIVE,
            "kafka_bootstrap_servers": "b1:9093,b2:9093",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_username": "svc",
            "kafka_sasl_password": SecretStr("s3cret"),
        }
    )
    source_format, options = kafka_source_options(production)
    assert source_format == "kafka"
    assert options["kafka.bootstrap.servers"] == "b1:9093,b2:9093"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "PLAIN"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="svc" password="s3cret";'
    )
    assert "kafka.sasl.password" not in options  # librdkafka's key means nothing to Java
    assert (options["startingOffsets"], options["failOnDataLoss"]) == ("earliest", "true")


def test_native_source_without_the_connector_says_what_to_install(spark, settings) -> None:
    native = settings.model_copy(
        update={"spark_source": SparkSource.NATIVE, "kafka_bootstrap_servers": "127.0.0.1:1"}
    )
    with pytest.raises(OrangeScrumError, match=r"spark-sql-kafka-0-10_2\.13"):
        read_kafka(spark, native)


def test_python_source_plan_has_the_kafka_columns(spark, settings) -> None:
    frame = read_kafka(spark, settings.model_copy(update={"kafka_bootstrap_servers": "x:1"}))
    assert frame.isStreaming
    assert [(f.name, f.dataType.simpleString()) for f in frame.schema.fields] == [
        ("key", "binary"),
        ("value", "binary"),
        ("topic", "string"),
        ("partition", "int"),
        ("offset", "bigint"),
        ("timestamp", "timestamp"),
    ]
