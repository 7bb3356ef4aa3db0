"""The whole pipeline on the local stack: simulator -> Kafka -> Spark -> lake -> dbt."""

from __future__ import annotations

import io
import json
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime

import duckdb
import pytest
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console

import ingestion.feed
import spark.stream
from ingestion.faults import UNREGISTERED_SCHEMA_ID
from orangescrum.core.contract.registry import ConfluentSchemaRegistry
from orangescrum.core.contract.schema import SUBJECT, available_versions, latest_version
from orangescrum.core.kafka_security import Security
from orangescrum.core.processes import port_is_free
from orangescrum.core.settings import Settings
from orangescrum.demo import DemoOptions, demo_clients, run_demo
from orangescrum.warehouse.load import model_schema
from tests.conftest import last_weeks_monday

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_every_produced_event_reaches_fact_activities_exactly_once(settings) -> None:
    # Two working days of one company are ~300 events: at 5% some are redelivered (the
    # chance of none is below 1e-6), which the assertion below checks.
    options = DemoOptions(
        days=2,
        companies=1,
        seed=7,
        bad_per_kind=1,
        duplicate_rate=0.05,
        start_date=last_weeks_monday(),
    )
    result = run_demo(settings, options, Console(quiet=True))

    assert result.problems == []
    assert result.produced.duplicates > 0, "the fixture should exercise redelivery"
    with duckdb.connect(str(settings.duckdb_file), read_only=True) as connection:
        schema = model_schema(connection, "fact_activities")
        fact_ids = [
            row[0]
            for row in connection.execute(
                f"select event_id from {schema}.fact_activities"
            ).fetchall()
        ]
        raw_rows = connection.execute("select count(*) from orangescrum_dw.raw_events").fetchone()
    assert len(fact_ids) == len(set(fact_ids))
    assert set(fact_ids) == result.produced.event_ids
    # Duplicate deliveries reach the lake (at-least-once upstream) and stop at staging.
    assert raw_rows[0] == result.produced.events
    assert result.streamed.rows_dead_lettered == 6


def framed_schema_ids(settings: Settings) -> set[int]:
    """The schema ids in the Confluent framing of every message on the events topic."""
    consumer = Consumer(
        settings.kafka_client_config() | {"group.id": "e2e-ids", "enable.partition.eof": True}
    )
    partitions = settings.topic_partitions
    consumer.assign([TopicPartition(settings.topic_events, p, 0) for p in range(partitions)])
    ids, ends = set(), 0
    try:
        while ends < partitions:
            message = consumer.poll(10)
            assert message is not None, "the events topic did not reach its end"
            if message.error():
                ends += 1
            elif (value := message.value() or b"")[:1] == b"\0" and len(value) >= 5:
                ids.add(int.from_bytes(value[1:5], "big"))
    finally:
        consumer.close()
    return ids


def registry_urls_asked(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Module -> the registry URLs the producer's and the stream's `registry_for` were given
    (on a fresh registry the ids equal registry.json's, so the ids alone cannot tell)."""
    asked: dict[str, set[str]] = {}
    for module in (ingestion.feed, spark.stream):
        original = module.registry_for

        def recording(url: str = "", basic_auth: str = "", *, _name=module.__name__, _f=original):
            asked.setdefault(_name, set()).add(url)
            return _f(url, basic_auth)

        monkeypatch.setattr(module, "registry_for", recording)
    return asked


def test_demo_twice_gives_the_same_counts_plaintext_then_sasl_ssl(settings, monkeypatch) -> None:
    asked = registry_urls_asked(monkeypatch)
    options = DemoOptions(
        days=1, companies=1, seed=11, bad_per_kind=1, start_date=last_weeks_monday()
    )
    output = io.StringIO()
    first = run_demo(settings, options, Console(file=output, width=300))
    # The second run goes through a secured broker: topics as admin, the history as the
    # producer user, the stream and its dead letters as the stream user (their ACLs allow
    # nothing else), and reconciles to the same counts. Its broker and registry are kept up
    # to look at the topic and the registry afterwards.
    secured = replace(options, security=Security.SASL_SSL)
    second_started = datetime.now(UTC).replace(microsecond=0)
    second = run_demo(settings, secured, Console(quiet=True), keep_broker=True)
    assert second.broker is not None and second.registry is not None
    try:
        assert second.problems == []
        assert second.warehouse == first.warehouse
        assert second.produced.event_ids == first.produced.event_ids
        assert second.streamed.dead_letter_reasons == first.streamed.dead_letter_reasons
        assert (settings.data_dir / "kafka-sasl-ssl" / "security" / "ca.pem").is_file()

        # Both runs used the demo's own HTTP registry, on the same URL, with the same ids.
        url = second.registry_url
        assert url == first.registry_url == second.registry.url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/apis/ccompat/v7")
        text = " ".join(output.getvalue().split())
        assert f"schema registry {url} (Apicurio Registry" in text
        assert f"registry: {url} (stopped with the demo" in text
        assert asked == {"ingestion.feed": {url}, "spark.stream": {url}}
        assert sorted(first.schema_ids) == available_versions()
        assert second.schema_ids == first.schema_ids
        served = ConfluentSchemaRegistry(url).subject_schemas(SUBJECT)
        assert set(served) == set(first.schema_ids.values())
        # The second run added nothing: its ids are the first run's, kept in the H2 file.
        base = url.removesuffix("/apis/ccompat/v7")
        meta_url = f"{base}/apis/registry/v2/groups/default/artifacts/{SUBJECT}/meta"
        with urllib.request.urlopen(meta_url, timeout=10) as response:
            modified = json.load(response)["modifiedOn"]
        assert datetime.fromisoformat(modified.replace("Z", "+00:00")) <= second_started
        # Every framed message on the topic carries the id that registry serves for the
        # version produced (the bad ones aside: an unregistered id, by design).
        admin = demo_clients(settings, second.broker).admin
        assert framed_schema_ids(admin) == {
            first.schema_ids[latest_version()],
            UNREGISTERED_SCHEMA_ID,
        }
    finally:
        second.broker.stop()
        second.registry.stop()
    assert port_is_free(second.registry.port)
