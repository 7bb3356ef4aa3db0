"""The whole pipeline on the local stack: simulator -> Kafka -> Spark -> lake -> dbt."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pytest
from rich.console import Console

from orangescrum.core.kafka_security import Security
from orangescrum.demo import DemoOptions, run_demo
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


def test_demo_twice_gives_the_same_counts_plaintext_then_sasl_ssl(settings) -> None:
    options = DemoOptions(
        days=1, companies=1, seed=11, bad_per_kind=1, start_date=last_weeks_monday()
    )
    first = run_demo(settings, options, Console(quiet=True))
    # The second run goes through a secured broker: topics as admin, the history as the
    # producer user, the stream and its dead letters as the stream user (their ACLs allow
    # nothing else), and reconciles to the same counts.
    secured = replace(options, security=Security.SASL_SSL)
    second = run_demo(settings, secured, Console(quiet=True))
    assert second.problems == []
    assert second.warehouse == first.warehouse
    assert second.produced.event_ids == first.produced.event_ids
    assert second.streamed.dead_letter_reasons == first.streamed.dead_letter_reasons
    assert (settings.data_dir / "kafka-sasl-ssl" / "security" / "ca.pem").is_file()
