"""The dashboard's "Pipeline health" page: its queries on the known run of tests/test_health.py,
then the Streamlit page itself."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from orangescrum.cli.dashboard import APP_PATH
from orangescrum.core.settings import Settings
from orangescrum.dashboard import health_page, health_queries
from tests.test_health import (
    DBT_FAILURES,
    LANDING_ID,
    NOW,
    KnownRun,
    at,
    known_settings,
    write_known_run,
)

HEALTH_PAGE = "health_page.py"  # relative to app.py, as st.navigation registers it


@pytest.fixture
def known(settings: Settings, tmp_path: Path) -> KnownRun:
    return write_known_run(known_settings(settings, tmp_path))


def utc(*values: datetime) -> list[pd.Timestamp]:
    return [pd.Timestamp(value) for value in values]


# --- queries ------------------------------------------------------------------------------------
def test_batch_history_oldest_first(known: KnownRun) -> None:
    frame = health_queries.batch_history(*known.settings.lake.open())
    assert frame.columns.tolist() == health_queries.BATCH_COLUMNS
    assert frame["finished_at"].tolist() == utc(
        at(5, "10:00:04").replace(microsecond=500_000),
        at(5, "18:00:07").replace(microsecond=250_000),
        at(6, "09:00:07"),
    )
    assert frame["landing_id"].tolist() == [LANDING_ID] * 3
    assert frame["batch_id"].tolist() == [0, 1, 2]
    assert frame["rows_in"].tolist() == [6, 1, 2]
    assert frame["rows_landed"].tolist() == [3, 1, 1]
    assert frame["rows_dead_lettered"].tolist() == [3, 0, 1]
    assert frame["duration_seconds"].tolist() == [4.5, 1.25, 2.0]
    # batch 1 ran while the broker restarted: its lag is unknown
    assert frame["lag_total"].isna().tolist() == [False, True, False]
    assert frame["lag_total"].dropna().tolist() == [7, 0]


def test_dead_letters_by_day_and_reason(known: KnownRun) -> None:
    by_day = health_queries.dead_letters_by_day(*known.settings.lake.open())
    assert list(by_day.itertuples(index=False, name=None)) == [
        (date(2024, 3, 5), "event_too_old", 1),
        (date(2024, 3, 5), "undecodable", 2),
        (date(2024, 3, 6), "undecodable", 1),
    ]
    assert list(
        health_queries.dead_letters_by_reason(by_day).itertuples(index=False, name=None)
    ) == [("undecodable", 3), ("event_too_old", 1)]


def test_source_freshness_of_lake_and_warehouse(known: KnownRun) -> None:
    filesystem, lake = known.settings.lake.open()
    frame = health_queries.source_freshness(filesystem, lake, known.settings.duckdb_file, NOW)
    assert frame.columns.tolist() == health_queries.FRESHNESS_COLUMNS
    assert list(frame.itertuples(index=False, name=None)) == [
        (
            "lake",
            "ok",
            pd.Timestamp(at(5, "18:00:00")),
            pd.Timestamp(at(6, "09:00:05")),
            3595.0,
            "5 Parquet file(s) in raw/ and processed/",
        ),
        (
            "warehouse",
            "ok",
            pd.Timestamp(at(5, "18:00:00")),
            pd.Timestamp(at(5, "18:00:05")),
            57595.0,
            "2 row(s) in fact_activities",
        ),
    ]


def test_last_dbt_run_failures(known: KnownRun) -> None:
    path = Path(known.settings.dbt_manifest_path).parent / "run_results.json"
    run = health_queries.last_dbt_run(path)
    assert run is not None
    assert run.failures == DBT_FAILURES
    frame = health_queries.dbt_failures(run)
    assert frame["unique_id"].tolist() == [node.unique_id for node in DBT_FAILURES]
    assert frame["status"].tolist() == ["skipped", "error", "fail"]
    assert health_queries.last_dbt_run(path.with_name("absent.json")) is None


def test_an_empty_lake_gives_empty_frames(settings: Settings) -> None:
    filesystem, lake = settings.lake.open()
    batches = health_queries.batch_history(filesystem, lake)
    assert batches.empty
    assert batches.columns.tolist() == health_queries.BATCH_COLUMNS
    dead_letters = health_queries.dead_letters_by_day(filesystem, lake)
    assert dead_letters.empty
    assert dead_letters.columns.tolist() == ["event_date", "reason", "dead_letters"]
    assert health_queries.dead_letters_by_reason(dead_letters).empty
    freshness = health_queries.source_freshness(
        filesystem, lake, settings.duckdb_file, datetime(2024, 3, 6, tzinfo=UTC)
    )
    assert freshness[["source", "state"]].values.tolist() == [
        ["lake", "empty"],
        ["warehouse", "missing"],
    ]
    assert freshness["age_seconds"].isna().all()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "no data"), (42.9, "42s"), (3595.0, "59m 55s"), (57595.0, "15h 59m"), (90000, "1d 1h")],
)
def test_age_text(seconds: float | None, text: str) -> None:
    assert health_page.age_text(seconds) == text


# --- the page -----------------------------------------------------------------------------------
def open_health_page(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ORANGESCRUM_DBT_MANIFEST_PATH", settings.dbt_manifest_path)
    page = AppTest.from_file(str(APP_PATH), default_timeout=30).run()
    return page.switch_page(HEALTH_PAGE).run()


def test_page_shows_the_known_run(known: KnownRun, monkeypatch: pytest.MonkeyPatch) -> None:
    page = open_health_page(known.settings, monkeypatch)
    assert not page.exception
    assert [title.value for title in page.title] == ["Pipeline health"]
    metrics = {metric.label: metric.value for metric in page.metric}
    assert metrics["Consumer lag"] == "0"  # after the last batch
    assert metrics["Micro-batches"] == "3"
    assert metrics["Dead letters"] == "4"
    assert metrics["Last dbt run"] == "3 failed"
    assert metrics["Newest ingestion"] != "no data"
    # lag over time, rows per batch, durations, dead letters by reason and day
    assert len(page.get("vega_lite_chart")) == 4
    # dead letters by reason, source freshness, dbt failures
    assert len(page.dataframe) == 3
    assert page.dataframe[0].value["dead_letters"].tolist() == [3, 1]
    assert page.dataframe[2].value["unique_id"].tolist() == [n.unique_id for n in DBT_FAILURES]
    assert [error.value for error in page.error] == ["3 node(s) did not pass."]


def test_page_before_anything_ran(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = known_settings(settings, tmp_path)
    page = open_health_page(settings, monkeypatch)
    assert not page.exception
    metrics = {metric.label: metric.value for metric in page.metric}
    assert metrics == {
        "Consumer lag": "n/a",
        "Micro-batches": "0",
        "Dead letters": "0",
        "Newest ingestion": "no data",
        "Last dbt run": "none",
    }
    assert [info.value for info in page.info] == [
        health_page.NO_BATCH,
        "No dead letter in the lake.",
        f"No dbt run recorded at {Path(settings.dbt_manifest_path).parent / 'run_results.json'}: "
        "run `orangescrum warehouse build`.",
    ]
    assert not page.get("vega_lite_chart")
    assert len(page.dataframe) == 1  # freshness: the lake empty, the warehouse missing
