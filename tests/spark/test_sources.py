"""Spark's own kafka source, configured from the same settings as every Kafka client."""

from __future__ import annotations

from pydantic import SecretStr

from orangescrum.core.settings import Settings
from spark.session import driver_java_options
from spark.stream import kafka_source_options, read_kafka


def test_source_options_for_the_local_broker(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"kafka_bootstrap_servers": "broker:9092", "max_events_per_batch": 5000}
    )
    assert kafka_source_options(configured) == {
        "kafka.bootstrap.servers": "broker:9092",
        "kafka.security.protocol": "PLAINTEXT",
        "subscribe": "events-raw",
        "startingOffsets": "earliest",
        "maxOffsetsPerTrigger": "5000",
        "failOnDataLoss": "true",
        "fetchOffset.numRetries": "120",
        "fetchOffset.retryIntervalMs": "1000",
    }


def test_source_options_for_a_sasl_ssl_cluster(settings: Settings) -> None:
    production = settings.model_copy(
        update={
            "kafka_bootstrap_servers": "b1:9093,b2:9093",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "svc",
            "kafka_sasl_password": SecretStr("s3cret"),
            "kafka_ssl_ca_location": "/etc/kafka/ca.pem",
        }
    )
    options = kafka_source_options(production)
    assert options["kafka.bootstrap.servers"] == "b1:9093,b2:9093"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="svc" password="s3cret";'  # pragma: allowlist secret
    )
    assert (options["kafka.ssl.truststore.type"], options["kafka.ssl.truststore.location"]) == (
        "PEM",
        "/etc/kafka/ca.pem",
    )
    assert "kafka.sasl.password" not in options  # librdkafka's key means nothing to Java


def test_source_plan_has_the_kafka_columns(spark, settings) -> None:
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


def test_only_a_long_running_stream_commits_its_heap_up_front() -> None:
    # A continuous stream's RSS must be flat from the start for the soak to see real leaks;
    # a short job should not pay for touching a whole heap.
    assert driver_java_options(long_running=True).split()[1:] == ["-Xms1g", "-XX:+AlwaysPreTouch"]
    assert "-Xms" not in driver_java_options(long_running=False)
