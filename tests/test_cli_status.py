"""`orangescrum status` as a person and a script meet it: the known run of tests/test_health.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orangescrum.core.settings import Settings
from tests.test_cli import json_of, settings_env
from tests.test_cli import orangescrum as run_cli
from tests.test_health import (
    LANDING_ID,
    UNREACHABLE_BOOTSTRAP,
    KnownRun,
    expected_lake_days,
    known_settings,
    write_checkpoint,
    write_known_run,
)
from tests.test_health import (
    known_topics as known_topics,  # the fixture, shared
)

HEAVY_MODULES = ("pyspark", "airflow", "cosmos", "dbt", "streamlit", "pandas")


def orangescrum(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return run_cli("status", *args, env=settings_env(settings))


def table_rows(text: str) -> list[list[str]]:
    """The table's rows as cells (rich draws one line per row when piped)."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture
def unreachable(settings: Settings, tmp_path: Path) -> KnownRun:
    """The known run, its checkpoint, and a broker address where nothing listens."""
    run = write_known_run(
        known_settings(settings, tmp_path).model_copy(
            update={"kafka_bootstrap_servers": UNREACHABLE_BOOTSTRAP}
        )
    )
    write_checkpoint(run.settings, planned=[{"events-raw": {"0": 3, "1": 1}}], committed=0)
    return run


def test_json_has_the_exact_lag_per_partition(known_topics: KnownRun) -> None:
    settings = known_topics.settings
    document = json_of(orangescrum(settings, "--json", "--batches", "2"))
    kafka = document["kafka"]
    assert (kafka["state"], kafka["bootstrap"]) == ("reachable", settings.kafka_bootstrap_servers)
    events, dead_letters = kafka["topics"]
    assert [(p["partition"], p["end"], p["committed"], p["lag"]) for p in events["partitions"]] == [
        (0, 5, 2, 3),
        (1, 3, 3, 0),
        (2, 4, None, 4),
    ]
    assert (events["name"], events["lag_total"], events["messages"]) == (
        settings.topic_events,
        7,
        12,
    )
    assert [p["end"] for p in dead_letters["partitions"]] == [0, 2, 0]
    assert (dead_letters["role"], dead_letters["lag_total"]) == ("dead letters", None)
    stream = document["stream"]
    assert (stream["state"], stream["committed_batch_id"], stream["batch_in_flight"]) == (
        "ran",
        0,
        1,
    )
    assert stream["committed_offsets"] == {settings.topic_events: {"0": 2, "1": 3}}
    assert [b["batch_id"] for b in document["batches"]["recent"]] == [2, 1]
    assert document["problems"] == ["The last dbt build had 3 node(s) that did not pass."]


def test_json_with_the_broker_unreachable(unreachable: KnownRun) -> None:
    document = json_of(orangescrum(unreachable.settings, "--json"))
    assert document["kafka"]["state"] == "unreachable"
    assert document["kafka"]["bootstrap"] == UNREACHABLE_BOOTSTRAP
    assert document["kafka"]["topics"] == []
    assert document["stream"]["committed_offsets"] == {"events-raw": {"0": 3, "1": 1}}
    lake_days = expected_lake_days(unreachable.lake)
    assert document["lake"]["totals"] == {
        "raw_days": 2,
        "raw_files": 3,
        "raw_bytes": sum(day.raw_bytes for day in lake_days),
        "processed_days": 2,
        "processed_files": 2,
        "processed_bytes": sum(day.processed_bytes for day in lake_days),
        "archived_days": 1,
    }
    assert [
        (d["event_date"], d["raw_files"], d["compacted"]) for d in document["lake"]["days"]
    ] == [
        ("2024-03-01", 0, False),
        ("2024-03-03", 0, False),
        ("2024-03-04", 2, True),
        ("2024-03-05", 1, False),
    ]
    assert document["dead_letters"]["by_reason"] == {"undecodable": 3, "event_too_old": 1}
    assert document["dead_letters"]["total"] == 4
    assert document["batches"]["files"] == 3
    assert [
        (b["batch_id"], b["rows_in"], b["rows_landed"], b["rows_dead_lettered"], b["lag_total"])
        for b in document["batches"]["recent"]
    ] == [(2, 2, 1, 1, 0), (1, 1, 1, 0, None), (0, 6, 3, 3, 7)]
    dbt = document["dbt"]
    assert dbt["state"] == "failed"
    assert dbt["run"]["status_counts"] == {
        "error": 1,
        "fail": 1,
        "no-op": 1,
        "pass": 1,
        "skipped": 1,
        "success": 1,
    }
    assert [f["unique_id"] for f in dbt["run"]["failures"]] == [
        "model.orangescrum.agg_daily_metrics",
        "model.orangescrum.fact_activities",
        "test.orangescrum.unique_fact_activities_event_id",
    ]
    freshness = document["freshness"]
    assert freshness["lake"] == {
        "files": 5,
        "newest_event_timestamp": "2024-03-05T18:00:00+00:00",
        "newest_ingested_at": "2024-03-06T09:00:05+00:00",
    }
    assert freshness["warehouse"]["state"] == "ok"
    assert freshness["warehouse"]["newest_ingested_at"] == "2024-03-05T18:00:05+00:00"
    assert document["problems"][0] == (
        f"Kafka at {UNREACHABLE_BOOTSTRAP} is unreachable ({UNREACHABLE_BOOTSTRAP}: "
        "Connection refused)."
    )


def test_table_with_the_broker_unreachable(unreachable: KnownRun) -> None:
    result = orangescrum(unreachable.settings)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # people's output goes to stderr, as for every command
    rows = table_rows(result.stderr)
    assert rows[0] == [
        "kafka",
        UNREACHABLE_BOOTSTRAP,
        "unreachable",
        f"{UNREACHABLE_BOOTSTRAP}: Connection refused",
    ]
    assert rows[1][:3] == ["stream", "checkpoint", "batch 0 committed"]
    assert ["stream", "landing id", LANDING_ID, "topic id -"] in rows
    assert ["dead letters", "undecodable", "3", "2024-03-05 2, 2024-03-06 1"] in rows
    assert ["dead letters", "total", "4", "in raw/_dead_letter"] in rows
    assert [
        "batches",
        f"{LANDING_ID} #0",
        "2024-03-05 10:00:04",
        "in 6, landed 3, dead-lettered 3, 4.50s, lag 7",
    ] in rows
    assert [
        "dbt",
        "test.orangescrum.unique_fact_activities_event_id",
        "fail",
        "Got 2 results, configured to fail if != 0",
    ] in rows
    lake = [row for row in rows if row[0] == "lake"]
    assert [row[1] for row in lake] == [
        "2024-03-01",
        "2024-03-03",
        "2024-03-04",
        "2024-03-05",
        "total",
    ]
    assert lake[2][3].endswith("(compacted)")
    problems = [row for row in rows if row[0] == "problems"]
    assert problems[0][2:] == [
        "2",  # the broker and the dbt failures
        f"Kafka at {UNREACHABLE_BOOTSTRAP} is unreachable ({UNREACHABLE_BOOTSTRAP}: "
        "Connection refused).",
    ]


def test_before_anything_ran(settings: Settings, tmp_path: Path) -> None:
    settings = known_settings(settings, tmp_path)
    result = orangescrum(settings, "--json")
    document = json_of(result)
    assert document["kafka"]["state"] == "not configured"
    assert document["stream"]["state"] == "stream never ran"
    assert document["dbt"]["state"] == "never ran"
    assert document["freshness"]["warehouse"]["state"] == "missing"
    assert document["lake"]["days"] == []

    rows = table_rows(orangescrum(settings).stderr)
    assert ["stream", "checkpoint", "stream never ran"] in [row[:3] for row in rows]


def test_help_loads_no_spark_dbt_or_airflow() -> None:
    # `orangescrum status --help` answers in about a second: nothing heavy is imported.
    probe = (
        "import sys; from typer.testing import CliRunner; from orangescrum.cli.app import app; "
        "result = CliRunner().invoke(app, ['status', '--help']); "
        "assert result.exit_code == 0 and '--json' in result.output, result.output; "
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_status_loads_no_spark_dbt_or_airflow(settings: Settings) -> None:
    probe = (
        "import sys; from orangescrum.cli.status import status; status(as_json=True); "
        f"print(sorted(m for m in {HEAVY_MODULES[:4]!r} if m in sys.modules), file=sys.stderr)"
    )
    env = os.environ | {"ORANGESCRUM_DATA_DIR": str(settings.data_dir)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"
