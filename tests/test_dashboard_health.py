"""The dashboard's "Pipeline health" page: its queries on the known run of tests/test_health.py,
then the Streamlit page itself."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from orangescrum.cli.dashboard import APP_PATH
from orangescrum.core.monitoring import METRICS_SCHEMA
from orangescrum.core.settings import Settings
from orangescrum.dashboard import health_page, health_queries
from tests.test_health import (
    DBT_FAILURES,
    LANDING_ID,
    METRICS,
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


# --- the charts (Vega-Lite specs, no browser) ---------------------------------------------------
COUNT_AXIS = {"format": "d", "tickMinStep": 1}
POINTED_LINE = {"type": "line", "point": True}
# Batch times in UTC whatever the browser's zone, padded so the end points show whole.
UTC_SCALE = {"type": "utc", "padding": health_page.BATCH_TIME_PADDING_PX}


def chart_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a chart spec draws (Altair keeps a DataFrame as a named dataset)."""
    return spec["datasets"][spec["data"]["name"]]


def test_lag_chart_draws_the_known_lags_as_points(known: KnownRun) -> None:
    batches = health_queries.batch_history(*known.settings.lake.open())
    spec = health_page.lag_chart(batches).to_dict()
    # Points: two known lags with an unknown one between them still show.
    assert spec["mark"] == POINTED_LINE
    # Batch 1's lag is unknown: it is left out, so the line joins batches 0 and 2.
    assert [(row["batch_id"], row["lag_total"]) for row in chart_rows(spec)] == [(0, 7), (2, 0)]
    assert [row["finished"] for row in chart_rows(spec)] == [
        "2024-03-05 10:00:04 UTC",
        "2024-03-06 09:00:07 UTC",
    ]
    x, y = spec["encoding"]["x"], spec["encoding"]["y"]
    assert (x["field"], x["type"], x["scale"]) == ("finished_at", "temporal", UTC_SCALE)
    assert x["axis"]["format"] == "%b %d %H:%M"  # day and time, never a bare "12 PM"
    assert (y["field"], y["axis"]) == ("lag_total", COUNT_AXIS)
    assert health_page.unknown_lag_note(batches) == (
        "Lag unknown for 1 micro-batch(es) (the broker could not be asked): "
        "the line joins the batches around them."
    )
    assert health_page.unknown_lag_note(batches.dropna(subset=["lag_total"])) is None


def test_rows_and_duration_charts(known: KnownRun) -> None:
    batches = health_queries.batch_history(*known.settings.lake.open())
    rows = health_page.rows_chart(batches).to_dict()
    assert rows["mark"] == POINTED_LINE
    assert rows["encoding"]["y"]["axis"] == COUNT_AXIS
    assert rows["encoding"]["color"]["scale"]["domain"] == ["Read", "Landed", "Dead-lettered"]
    assert [(row["series"], row["batch_id"], row["rows"]) for row in chart_rows(rows)] == [
        ("Read", 0, 6),
        ("Read", 1, 1),
        ("Read", 2, 2),
        ("Landed", 0, 3),
        ("Landed", 1, 1),
        ("Landed", 2, 1),
        ("Dead-lettered", 0, 3),
        ("Dead-lettered", 1, 0),
        ("Dead-lettered", 2, 1),
    ]
    duration = health_page.duration_chart(batches).to_dict()
    assert duration["mark"] == POINTED_LINE
    assert [row["duration_seconds"] for row in chart_rows(duration)] == [4.5, 1.25, 2.0]
    # Seconds are fractional: no integer format on this axis.
    assert "axis" not in duration["encoding"]["y"]
    for spec in (rows, duration):
        assert spec["encoding"]["x"]["scale"] == UTC_SCALE
        assert spec["encoding"]["x"]["axis"]["format"] == "%b %d %H:%M"


def test_dead_letters_chart_has_one_band_per_day(known: KnownRun) -> None:
    by_day = health_queries.dead_letters_by_day(*known.settings.lake.open())
    spec = health_page.dead_letters_chart(by_day).to_dict()
    assert spec["mark"] == {"type": "bar"}
    x = spec["encoding"]["x"]
    # Ordinal day labels, oldest first: one band (and one label) per day, bars centred on it.
    assert (x["field"], x["type"]) == ("day", "ordinal")
    assert "timeUnit" not in x
    assert x["sort"] == ["Mar 05", "Mar 06"]
    assert [
        (row["day"], row["event_date"], row["reason"], row["dead_letters"])
        for row in chart_rows(spec)
    ] == [
        ("Mar 05", "2024-03-05", "event_too_old", 1),
        ("Mar 05", "2024-03-05", "undecodable", 2),
        ("Mar 06", "2024-03-06", "undecodable", 1),
    ]
    assert spec["encoding"]["y"]["axis"] == COUNT_AXIS


def test_day_labels_carry_the_year_only_across_years() -> None:
    assert health_page.day_labels([date(2024, 3, 5), date(2024, 3, 6)]) == {
        date(2024, 3, 5): "Mar 05",
        date(2024, 3, 6): "Mar 06",
    }
    assert health_page.day_labels([date(2023, 12, 31), date(2024, 1, 1)]) == {
        date(2023, 12, 31): "Dec 31, 2023",
        date(2024, 1, 1): "Jan 01, 2024",
    }


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
    # lag over time, rows per batch, durations, dead letters by reason and day: the page
    # shows the charts built above
    specs = [json.loads(chart.proto.spec) for chart in page.get("vega_lite_chart")]
    assert [spec["mark"] for spec in specs] == [POINTED_LINE] * 3 + [{"type": "bar"}]
    assert [spec["encoding"]["y"]["field"] for spec in specs] == [
        "lag_total",
        "rows",
        "duration_seconds",
        "dead_letters",
    ]
    # batch 1's lag is unknown: the page says why the line skips it
    assert "Lag unknown for 1 micro-batch(es)" in page.caption[1].value
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


def test_page_when_no_batch_has_a_lag(known: KnownRun, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every batch ran while the broker could not be asked: no lag chart, a sentence instead.
    for row in METRICS:
        path = Path(known.settings.lake.metrics) / (
            f"metrics-{LANDING_ID}-b{row['batch_id']:010d}.parquet"
        )
        assert path.is_file()
        pq.write_table(
            pa.Table.from_pylist([row | {"lag_total": None}], schema=METRICS_SCHEMA), path
        )
    page = open_health_page(known.settings, monkeypatch)
    assert not page.exception
    assert {metric.label: metric.value for metric in page.metric}["Consumer lag"] == "n/a"
    assert [info.value for info in page.info] == [
        "No lag recorded yet: the broker could not be asked after any micro-batch."
    ]
    specs = [json.loads(chart.proto.spec) for chart in page.get("vega_lite_chart")]
    assert [spec["encoding"]["y"]["field"] for spec in specs] == [
        "rows",
        "duration_seconds",
        "dead_letters",
    ]
