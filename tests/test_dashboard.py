"""The dashboard on a tiny warehouse: its queries, its Streamlit page, its command.

The warehouse is a DuckDB file whose marts have exactly the columns and types of the dbt
contracts (read from _marts__models.yml), so a renamed mart column breaks these tests.

Rows (company 1: Apollo 10, Borealis 20; company 2: Cosmos 30; -1 is "No project"; user -1
is the unknown member). fact_activities:

    day    proj  events (user, task)                                      hours
    03-04   10   e1 task_created (11, 101), e2 task_commented (12, 101),  e3: 2.0 billable
                 e3 time_logged (11)
    03-04   -1   e4 user_logged_in (-1)
    03-05   10   e5 task_status_changed (11, 101), e6 timer_stopped (13)  e6: 0.5 non-billable
    03-05   20   e7 task_status_changed (12, 201)
    03-06   10   e8 task_status_changed (11, 102), e9 time_logged (11)    e9: 0.5 billable
    03-06   30   e10 task_created (21, 301), e11 time_logged (21)         e11: 4.0 non-billable

agg_daily_metrics holds the same days, plus closings and daily cycle-time medians:
10 closes 1 task on 03-05 (median 10 h) and 1 on 03-06 (median 20 h), 20 closes 1 on 03-05
(median 30 h). Hours are sums of binary-exact values, so they compare exactly.

The KPIs are compiled by MetricFlow from a semantic manifest that `orangescrum dashboard`'s own
`dbt parse` writes once per session (the project's real metrics), and run on this warehouse.

The demo's console output (its default length, the Spark step's status line, the explained
reconciliation) is tested here too, on known reports: what the person at the terminal reads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
import yaml
from rich.console import Console
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from ingestion.faults import BAD_KINDS, EXPECTED_REASON
from ingestion.feed import ProduceReport
from orangescrum import REPO_ROOT
from orangescrum.cli import dashboard as dashboard_command
from orangescrum.cli import demo as demo_command
from orangescrum.cli.dashboard import (
    APP_PATH,
    dashboard,
    semantic_manifest_target,
    streamlit_command,
    write_semantic_manifest,
)
from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.monitoring import METRICS_SCHEMA
from orangescrum.core.settings import Settings
from orangescrum.dashboard import app as dashboard_app
from orangescrum.dashboard import queries, semantic
from orangescrum.dashboard.queries import Filters, WarehouseNotReadyError
from orangescrum.demo import (
    DemoOptions,
    DemoResult,
    StreamProgress,
    dbt_status_lines,
    demo_registry,
    poll_stream,
    print_summary,
)
from orangescrum.warehouse.load import WarehouseCounts
from spark.stream import StreamTotals

MARTS_YAML = REPO_ROOT / "dbt_project" / "models" / "marts" / "_marts__models.yml"
DUCKDB_TYPES = {"bigint": "BIGINT", "string": "VARCHAR", "date": "DATE", "boolean": "BOOLEAN"}
DUCKDB_TYPES |= {"timestamp": "TIMESTAMP"}

DAY_1, DAY_2, DAY_3 = dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6)
EVERYTHING = Filters(DAY_1, DAY_3)

PROJECTS = [  # project_id, company_id, project_name
    (-1, None, "No project"),
    (10, 1, "Apollo"),
    (20, 1, "Borealis"),
    (30, 2, "Cosmos"),
]
USERS = [(-1, None), (11, 1), (12, 1), (13, 1), (21, 2)]  # user_id, company_id
FACT = [  # event_id, event_type, event_category, company, user, project, task, day, hours,
    # billable
    ("e1", "task_created", "task", 1, 11, 10, 101, DAY_1, None, None),
    ("e2", "task_commented", "task", 1, 12, 10, 101, DAY_1, None, None),
    ("e3", "time_logged", "time", 1, 11, 10, None, DAY_1, 2.0, True),
    ("e4", "user_logged_in", "user", 1, -1, -1, None, DAY_1, None, None),
    ("e5", "task_status_changed", "task", 1, 11, 10, 101, DAY_2, None, None),
    ("e6", "timer_stopped", "time", 1, 13, 10, None, DAY_2, 0.5, False),
    ("e7", "task_status_changed", "task", 1, 12, 20, 201, DAY_2, None, None),
    ("e8", "task_status_changed", "task", 1, 11, 10, 102, DAY_3, None, None),
    ("e9", "time_logged", "time", 1, 11, 10, None, DAY_3, 0.5, True),
    ("e10", "task_created", "task", 2, 21, 30, 301, DAY_3, None, None),
    ("e11", "time_logged", "time", 2, 21, 30, None, DAY_3, 4.0, False),
]
AGG = [  # day, company, project, events, users, created, closed, comments, billable,
    # non-billable, median cycle time
    (DAY_1, 1, 10, 3, 2, 1, 0, 1, 2.0, 0.0, None),
    (DAY_1, 1, -1, 1, 1, 0, 0, 0, 0.0, 0.0, None),
    (DAY_2, 1, 10, 2, 2, 0, 1, 0, 0.0, 0.5, 10.0),
    (DAY_2, 1, 20, 1, 1, 0, 1, 0, 0.0, 0.0, 30.0),
    (DAY_3, 1, 10, 2, 1, 0, 1, 0, 0.5, 0.0, 20.0),
    (DAY_3, 2, 30, 2, 1, 1, 0, 0, 0.0, 4.0, None),
]


def contract_columns() -> dict[str, list[tuple[str, str]]]:
    """Mart -> [(column, DuckDB type)] from the dbt contracts."""
    models = yaml.safe_load(MARTS_YAML.read_text())["models"]
    return {
        model["name"]: [
            (
                column["name"],
                "DOUBLE" if "double" in column["data_type"] else DUCKDB_TYPES[column["data_type"]],
            )
            for column in model["columns"]
        ]
        for model in models
    }


def insert(
    connection: duckdb.DuckDBPyConnection, table: str, columns: str, rows: list[tuple]
) -> None:
    placeholders = ", ".join("?" for _ in columns.split(","))
    connection.executemany(
        f"insert into {queries.MARTS_SCHEMA}.{table} ({columns}) values ({placeholders})", rows
    )


def build_warehouse(path: Path, marts: tuple[str, ...] = queries.REQUIRED_MARTS) -> Path:
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"create schema {queries.MARTS_SCHEMA}")
        for name, columns in contract_columns().items():
            if name in marts:
                ddl = ", ".join(f"{column} {kind}" for column, kind in columns)
                connection.execute(f"create table {queries.MARTS_SCHEMA}.{name} ({ddl})")
        if marts != queries.REQUIRED_MARTS:
            return path
        insert(connection, "dim_dates", "date_day", [(DAY_1,), (DAY_2,), (DAY_3,)])
        insert(connection, "dim_projects", "project_id, company_id, project_name", PROJECTS)
        insert(connection, "dim_users", "user_id, company_id", USERS)
        insert(
            connection,
            "fact_activities",
            "event_id, event_type, event_category, company_id, user_id, project_id, task_id, "
            "activity_date, logged_hours, is_billable",
            FACT,
        )
        insert(
            connection,
            "agg_daily_metrics",
            "activity_date, company_id, project_id, event_count, active_user_count, "
            "tasks_created_count, tasks_closed_count, comment_count, billable_hours_logged, "
            "non_billable_hours_logged, median_task_cycle_time_hours",
            AGG,
        )
    return path


def shift_days(path: Path, days: int) -> None:
    """Move every day of the warehouse `days` later (e.g. so its last day is today)."""
    with duckdb.connect(str(path)) as connection:
        for table, column in (
            ("dim_dates", "date_day"),
            ("fact_activities", "activity_date"),
            ("agg_daily_metrics", "activity_date"),
        ):
            connection.execute(
                f"update {queries.MARTS_SCHEMA}.{table} set {column} = {column} + {days}"
            )


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture(scope="session")
def semantic_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data dir whose dashboard target folder holds a fresh semantic manifest."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("semantic"), _env_file=None)
    write_semantic_manifest(settings)
    return settings


@pytest.fixture(scope="session")
def semantic_manifest(semantic_settings: Settings) -> Path:
    return semantic_manifest_target(semantic_settings) / semantic.MANIFEST_NAME


@pytest.fixture(scope="session")
def metric_compiler(semantic_manifest: Path) -> semantic.MetricCompiler:
    return semantic.MetricCompiler.from_file(semantic_manifest)


@pytest.fixture
def connection(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with queries.open_warehouse(warehouse) as opened:
        yield opened


def days(*values: dt.date) -> list[pd.Timestamp]:
    return [pd.Timestamp(value) for value in values]


# --- queries ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            EVERYTHING,
            # 11 events; users 11, 12, 13, 21 (the unknown member -1 is no user); created e1,
            # e10; 3 closings; billable 2.0 + 0.5; non-billable 0.5 + 4.0
            (11, 4, 2, 3, 2.5, 4.5),
            id="everything",
        ),
        pytest.param(
            Filters(DAY_1, DAY_3, company_id=2),
            # Cosmos only: e10, e11 by user 21, one task created, 4.0 non-billable hours
            (2, 1, 1, 0, 0.0, 4.0),
            id="company-2",
        ),
        pytest.param(
            Filters(DAY_2, DAY_3, company_id=1, project_id=10),
            # e5, e6, e8, e9 by users 11 and 13; closings on 03-05 and 03-06; e9 0.5 billable,
            # e6 0.5 non-billable
            (4, 2, 0, 2, 0.5, 0.5),
            id="apollo-last-two-days",
        ),
        pytest.param(
            Filters(dt.date(2024, 3, 10), dt.date(2024, 3, 11)),
            # nothing on those days: zeros, not nulls
            (0, 0, 0, 0, 0.0, 0.0),
            id="empty-range",
        ),
    ],
)
def test_kpis(
    connection: duckdb.DuckDBPyConnection,
    metric_compiler: semantic.MetricCompiler,
    filters: Filters,
    expected: tuple,
) -> None:
    row = queries.kpis(connection, filters, metric_compiler).to_dict("records")
    assert row == [
        dict(
            zip(
                [
                    "event_count",
                    "active_user_count",
                    "tasks_created_count",
                    "tasks_closed_count",
                    "billable_hours",
                    "non_billable_hours",
                ],
                expected,
                strict=True,
            )
        )
    ]


def test_kpis_run_on_a_warehouse_of_any_file_name(
    tmp_path: Path, metric_compiler: semantic.MetricCompiler
) -> None:
    # dbt-duckdb names the manifest's database after the parsed file ("warehouse"): the
    # compiled SQL names schema and table only, so any file's default database answers.
    sql = queries.kpi_sql(metric_compiler, EVERYTHING)
    assert '"orangescrum_dw_marts"."fact_activities"' in sql
    assert '"warehouse".' not in sql
    path = build_warehouse(tmp_path / "elsewhere.duckdb")
    with queries.open_warehouse(path) as connection:
        [row] = queries.kpis(connection, EVERYTHING, metric_compiler).to_dict("records")
    assert row["event_count"] == 11


def test_missing_semantic_manifest_is_one_sentence(tmp_path: Path) -> None:
    absent = tmp_path / "semantic_manifest.json"
    with pytest.raises(semantic.SemanticLayerNotReadyError) as raised:
        semantic.MetricCompiler.from_file(absent)
    message = str(raised.value)
    assert message == (
        f"No semantic manifest at {absent}, so the KPIs cannot be computed from the semantic "
        f"layer's metrics: {semantic.MANIFEST_HINT}."
    )
    assert "\n" not in message


def test_unreadable_semantic_manifest_is_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "semantic_manifest.json"
    broken.write_text('{"semantic_models": "not a list"}')
    with pytest.raises(semantic.SemanticLayerNotReadyError) as raised:
        semantic.MetricCompiler.from_file(broken)
    message = str(raised.value)
    assert message.startswith(f"MetricFlow cannot read the semantic manifest {broken} (")
    assert message.endswith(f"{semantic.MANIFEST_HINT}.")
    assert "\n" not in message


def test_filters_become_where_constraints_of_dates_and_integers() -> None:
    assert semantic.filter_constraints(DAY_1, DAY_3, 1, -1) == [
        "{{ TimeDimension('metric_time', 'day') }} between '2024-03-04' and '2024-03-06'",
        "{{ Entity('company') }} = 1",
        "{{ Entity('project') }} = -1",
    ]
    assert semantic.known_user_constraint(-1) == "{{ Entity('user') }} <> -1"
    # Rendered into SQL, so nothing but a date or an integer gets there.
    for bad in (
        {"company_id": "1 or 1=1"},
        {"project_id": 1.5},
        {"company_id": True},
        {"start_date": "2024-03-04"},
        {"end_date": dt.datetime(2024, 3, 6, 12)},
    ):
        arguments: dict[str, Any] = {"start_date": DAY_1, "end_date": DAY_3} | bad
        with pytest.raises(TypeError):
            semantic.filter_constraints(**arguments)


def test_manifest_file_is_the_commands_else_dbt_projects(settings: Settings) -> None:
    configured = settings.model_copy(update={"dashboard_semantic_manifest": "/x/m.json"})
    assert semantic.manifest_file(configured) == Path("/x/m.json")
    assert semantic.manifest_file(settings) == (
        REPO_ROOT / "dbt_project" / "target" / "semantic_manifest.json"
    )


def test_daily_activity_has_every_day_and_distinct_users_per_day(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    frame = queries.daily_activity(connection, EVERYTHING)
    assert frame["activity_date"].tolist() == days(DAY_1, DAY_2, DAY_3)
    assert frame["event_count"].tolist() == [4, 3, 4]  # e1-e4, e5-e7, e8-e11
    # 03-04: 11, 12 (not -1); 03-05: 11, 13, 12; 03-06: 11, 21
    assert frame["active_user_count"].tolist() == [2, 3, 2]


def test_daily_activity_fills_idle_days_with_zeros(connection: duckdb.DuckDBPyConnection) -> None:
    frame = queries.daily_activity(connection, Filters(DAY_1, DAY_3, company_id=2))
    assert frame["event_count"].tolist() == [0, 0, 2]  # company 2 is active on 03-06 only
    assert frame["active_user_count"].tolist() == [0, 0, 1]


def test_task_throughput(connection: duckdb.DuckDBPyConnection) -> None:
    frame = queries.task_throughput(connection, EVERYTHING)
    assert frame.to_dict("list") == {
        "activity_date": days(DAY_1, DAY_2, DAY_3),
        "tasks_created_count": [1, 0, 1],  # e1; none; e10
        "tasks_closed_count": [0, 2, 1],  # none; Apollo + Borealis; Apollo
    }


def test_hours_by_project_skips_projects_without_hours(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    frame = queries.hours_by_project(connection, EVERYTHING)
    assert frame.to_dict("list") == {
        "project_id": [30, 10],  # most hours first; Borealis and "No project" logged none
        "project_name": ["Cosmos", "Apollo"],
        "billable_hours": [0.0, 2.5],  # Apollo: e3 2.0 + e9 0.5
        "non_billable_hours": [4.0, 0.5],  # Cosmos: e11; Apollo: e6
        "total_hours": [4.0, 3.0],
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # Borealis: one day at 30 h; Apollo: median of its daily medians 10 h and 20 h = 15 h
        pytest.param(EVERYTHING, [(20, "Borealis", 30.0, 1), (10, "Apollo", 15.0, 2)], id="all"),
        # a single day: the mart's own median
        pytest.param(Filters(DAY_3, DAY_3), [(10, "Apollo", 20.0, 1)], id="one-day"),
        # Cosmos closed nothing
        pytest.param(Filters(DAY_1, DAY_3, company_id=2), [], id="none"),
    ],
)
def test_cycle_time_by_project(
    connection: duckdb.DuckDBPyConnection, filters: Filters, expected: list[tuple]
) -> None:
    frame = queries.cycle_time_by_project(connection, filters)
    assert list(frame.itertuples(index=False, name=None)) == expected


def test_top_event_types_ranks_by_count_then_name(connection: duckdb.DuckDBPyConnection) -> None:
    frame = queries.top_event_types(connection, EVERYTHING, limit=3)
    assert list(frame.itertuples(index=False, name=None)) == [
        ("task_status_changed", "task", 3),  # e5, e7, e8
        ("time_logged", "time", 3),  # e3, e9, e11 (ties sorted by name)
        ("task_created", "task", 2),  # e1, e10
    ]


def test_daily_metrics_table_names_projects(connection: duckdb.DuckDBPyConnection) -> None:
    frame = queries.daily_metrics(connection, Filters(DAY_1, DAY_1, company_id=1))
    # newest day first, then company and project name: "Apollo" before "No project"
    assert frame[["project_id", "project_name", "event_count"]].to_dict("list") == {
        "project_id": [10, -1],
        "project_name": ["Apollo", "No project"],
        "event_count": [3, 1],
    }


def test_choices_and_bounds(connection: duckdb.DuckDBPyConnection) -> None:
    assert queries.date_bounds(connection) == (DAY_1, DAY_3)
    assert list(queries.project_choices(connection).itertuples(index=False, name=None)) == [
        (1, 10, "Apollo"),
        (1, 20, "Borealis"),
        (1, -1, "No project"),
        (2, 30, "Cosmos"),
    ]


def test_inverted_date_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="after end_date"):
        Filters(DAY_3, DAY_1)


def test_missing_warehouse_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(WarehouseNotReadyError, match=r"No DuckDB warehouse at .*make demo"):
        queries.require_warehouse(tmp_path / "absent.duckdb")


def test_missing_marts_are_named(tmp_path: Path) -> None:
    path = build_warehouse(tmp_path / "partial.duckdb", marts=("dim_dates", "dim_users"))
    with pytest.raises(
        WarehouseNotReadyError,
        match=r"lacks agg_daily_metrics, fact_activities, dim_projects .*warehouse build",
    ):
        queries.require_warehouse(path)


# --- the daily charts ---------------------------------------------------------------------------
HOUR_DIRECTIVES = re.compile(r"%[HIklMLpSsQ]")  # d3-time-format's hours, minutes, seconds, AM/PM
SATURDAY = dt.date(2024, 3, 9)
PARTIAL_NOTE = dashboard_app.PARTIAL_DAY_NOTE


def daily_frame(*dates: dt.date) -> pd.DataFrame:
    """A daily panel as the queries return it (activity_date a pandas timestamp)."""
    count = len(dates)
    return pd.DataFrame(
        {
            "activity_date": days(*dates),
            "event_count": list(range(10, 10 + count)),
            "active_user_count": [2] * count,
            "tasks_created_count": [1] * count,
            "tasks_closed_count": [0] * count,
        }
    )


def layers(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The layers of a chart spec by mark type."""
    found: dict[str, list[dict[str, Any]]] = {}
    for layer in spec["layer"]:
        mark = layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
        found.setdefault(mark, []).append(layer)
    return found


def filters_of(layer: dict[str, Any]) -> list[str]:
    return [step["filter"] for step in layer.get("transform", []) if "filter" in step]


def utc_noon(day: dt.date) -> dict[str, Any]:
    return {"year": day.year, "month": day.month, "date": day.day, "hours": 12, "utc": True}


def test_daily_line_has_a_point_on_every_day_and_a_date_only_utc_axis() -> None:
    frame = daily_frame(DAY_1, DAY_2, DAY_3)
    spec = dashboard_app.daily_line_chart(frame, "event_count", "Events", today=SATURDAY).to_dict()
    by_mark = layers(spec)
    assert set(by_mark) == {"line", "point"}  # no weekend in Mon-Wed, no today
    (points,) = by_mark["point"]
    assert points["mark"]["filled"] is True
    assert filters_of(points) == ["!datum.is_partial"]  # every complete day has its point
    for layer in spec["layer"]:
        x = layer["encoding"]["x"]
        assert (x["field"], x["type"], x["scale"]["type"]) == ("day", "temporal", "utc")
        assert x["axis"]["format"] == "%b %d"
        assert not HOUR_DIRECTIVES.search(x["axis"]["format"])
        assert x["axis"]["tickCount"] == {"interval": "day", "step": 1}  # never between days
        # half a day of room either side of the first and last day
        assert x["scale"]["domain"] == [utc_noon(DAY_1 - dt.timedelta(days=1)), utc_noon(DAY_3)]
    # Vega reads a bare ISO date as UTC midnight: the same day in every browser's time zone
    (dataset,) = spec["datasets"].values()
    assert [row["day"] for row in dataset] == ["2024-03-04", "2024-03-05", "2024-03-06"]
    assert [row["day_label"] for row in dataset] == ["Mon Mar 04", "Tue Mar 05", "Wed Mar 06"]
    assert PARTIAL_NOTE not in json.dumps(spec)


def test_one_day_range_is_a_day_wide_with_its_point() -> None:
    spec = dashboard_app.daily_line_chart(
        daily_frame(DAY_2), "event_count", "Events", today=SATURDAY
    ).to_dict()
    (points,) = layers(spec)["point"]
    assert points["encoding"]["x"]["scale"]["domain"] == [utc_noon(DAY_1), utc_noon(DAY_2)]
    (dataset,) = spec["datasets"].values()
    assert [(row["day"], row["is_partial"]) for row in dataset] == [("2024-03-05", False)]


def test_today_is_marked_partial_hollow_dashed_and_annotated() -> None:
    frame = daily_frame(DAY_1, DAY_2, DAY_3)
    days_frame = dashboard_app.by_day(frame, today=DAY_3)
    assert days_frame["is_partial"].tolist() == [False, False, True]
    assert days_frame["is_tail"].tolist() == [False, True, True]  # the dashed last segment
    assert days_frame["day_label"].tolist()[-1] == f"Wed Mar 06, {PARTIAL_NOTE}"

    spec = dashboard_app.daily_line_chart(frame, "event_count", "Events", today=DAY_3).to_dict()
    by_mark = layers(spec)
    solid, dashed = by_mark["line"]
    assert filters_of(solid) == ["!datum.is_partial"]  # the partial day never drags the line
    assert (dashed["mark"]["strokeDash"], filters_of(dashed)) == ([4, 3], ["datum.is_tail"])
    filled, hollow = by_mark["point"]
    assert (filled["mark"]["filled"], hollow["mark"]["filled"]) == (True, False)
    assert filters_of(hollow) == ["datum.is_partial"]
    (note,) = by_mark["text"]
    assert note["encoding"]["text"] == {"value": "today (partial)"}
    assert filters_of(note) == ["datum.is_partial"]


def test_weekends_are_shaded_a_day_wide() -> None:
    friday, saturday, sunday = (dt.date(2024, 3, day) for day in (8, 9, 10))
    frame = daily_frame(friday, saturday, sunday)
    spec = dashboard_app.daily_line_chart(frame, "event_count", "Events", today=DAY_1).to_dict()
    (shade,) = layers(spec)["rect"]
    assert filters_of(shade) == ["datum.is_weekend"]
    assert (shade["encoding"]["x"]["field"], shade["encoding"]["x2"]["field"]) == (
        "shade_start",
        "shade_end",
    )
    (dataset,) = spec["datasets"].values()
    assert [row["is_weekend"] for row in dataset] == [False, True, True]
    saturday_row = dataset[1]
    assert (saturday_row["shade_start"], saturday_row["shade_end"]) == (
        "2024-03-08T12:00:00Z",
        "2024-03-09T12:00:00Z",
    )


def test_throughput_bars_are_grouped_per_date_and_today_is_pale() -> None:
    spec = dashboard_app.throughput_chart(daily_frame(DAY_1, DAY_2, DAY_3), today=DAY_3).to_dict()
    encoding = spec["encoding"]
    assert spec["mark"]["type"] == "bar"
    assert (encoding["x"]["field"], encoding["x"]["type"]) == ("tick", "ordinal")
    assert encoding["x"]["sort"] == ["Mar 04", "Mar 05", "Mar 06"]  # dates, never "12 PM"
    assert encoding["xOffset"]["field"] == "kind"
    assert encoding["opacity"]["condition"] == {
        "test": "datum.is_partial",
        "value": dashboard_app.PARTIAL_OPACITY,
    }
    (dataset,) = spec["datasets"].values()
    partial = {(row["tick"], row["kind"]) for row in dataset if row["is_partial"]}
    assert partial == {("Mar 06", "Created"), ("Mar 06", "Closed")}


# --- the Streamlit page -------------------------------------------------------------------------
@pytest.fixture
def page(warehouse: Path, semantic_manifest: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ORANGESCRUM_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("ORANGESCRUM_DASHBOARD_SEMANTIC_MANIFEST", str(semantic_manifest))
    return AppTest.from_file(str(APP_PATH), default_timeout=30)


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_page_shows_the_kpis_of_everything(page: AppTest) -> None:
    page.run()
    assert not page.exception
    assert not page.error
    assert metrics(page) == {
        "Events": "11",
        "Active users": "4",
        "Tasks created": "2",
        "Tasks closed": "3",
        "Billable hours": "2.5",
        "Non-billable hours": "4.5",
    }
    assert len(page.get("vega_lite_chart")) == 6  # events, users, throughput, cycle, hours, types
    assert len(page.dataframe) == 1


def test_filters_change_the_metrics(page: AppTest) -> None:
    page.run()
    page.sidebar.selectbox(key="company").set_value(2).run()
    assert not page.exception
    assert page.sidebar.selectbox(key="project").options == ["All projects", "Cosmos"]
    # Cosmos: e10, e11 by user 21, 4.0 non-billable hours
    assert metrics(page)["Events"] == "2"
    assert metrics(page)["Non-billable hours"] == "4.0"
    # no task of Cosmos was closed: its panel says so instead of drawing empty bars
    assert [notice.value for notice in page.info] == [
        "No task with an observed creation was closed in this selection."
    ]
    assert len(page.get("vega_lite_chart")) == 5

    page.sidebar.selectbox(key="company").set_value(1).run()
    page.sidebar.selectbox(key="project").set_value(10)
    page.sidebar.date_input(key="dates").set_value((DAY_2, DAY_3)).run()
    assert not page.exception
    assert metrics(page)["Events"] == "4"  # e5, e6, e8, e9
    assert metrics(page)["Tasks closed"] == "2"


def test_page_shows_a_rebuilt_warehouse(page: AppTest, warehouse: Path) -> None:
    page.run()
    assert metrics(page)["Events"] == "11"
    with duckdb.connect(str(warehouse)) as writer:  # a rebuild: one more event on 03-04
        insert(
            writer,
            "fact_activities",
            "event_id, event_type, company_id, user_id, project_id, activity_date",
            [("e12", "task_viewed", 1, 12, 10, DAY_1)],
        )
        writer.execute(
            f"update {queries.MARTS_SCHEMA}.agg_daily_metrics set event_count = event_count + 1 "
            "where activity_date = '2024-03-04' and project_id = 10"
        )
    stat = warehouse.stat()  # guard against a coarse file-system clock
    os.utime(warehouse, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    page.run()
    assert metrics(page)["Events"] == "12"


def test_page_without_semantic_manifest_says_how_to_write_it(
    page: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "target" / "semantic_manifest.json"
    monkeypatch.setenv("ORANGESCRUM_DASHBOARD_SEMANTIC_MANIFEST", str(absent))
    page.run()
    assert not page.exception
    [error] = page.error
    assert error.value.startswith(f"No semantic manifest at {absent}")
    assert "`orangescrum dashboard` writes it (dbt parse)" in error.value
    assert not page.metric


def test_page_without_warehouse_explains_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORANGESCRUM_DUCKDB_PATH", str(tmp_path / "absent.duckdb"))
    page = AppTest.from_file(str(APP_PATH), default_timeout=30).run()
    assert not page.exception
    assert "make demo" in page.error[0].value
    assert not page.metric


def chart_specs(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]


def test_page_draws_daily_lines_with_points_on_date_axes(page: AppTest) -> None:
    page.run()
    assert not page.exception
    events, users, throughput = chart_specs(page)[:3]
    for spec in (events, users):
        by_mark = layers(spec)
        assert {"line", "point"} <= set(by_mark)
        x = by_mark["point"][0]["encoding"]["x"]
        assert (x["type"], x["axis"]["format"]) == ("temporal", "%b %d")
        assert PARTIAL_NOTE not in json.dumps(spec)  # 2024 is long over
    assert throughput["encoding"]["x"]["sort"] == ["Mar 04", "Mar 05", "Mar 06"]
    assert "Shaded: weekends." in [caption.value for caption in page.caption]


def test_page_marks_today_as_partial(
    warehouse: Path, semantic_manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    shift_days(warehouse, (today - DAY_3).days)  # the last day of the marts is today
    monkeypatch.setenv("ORANGESCRUM_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("ORANGESCRUM_DASHBOARD_SEMANTIC_MANIFEST", str(semantic_manifest))
    page = AppTest.from_file(str(APP_PATH), default_timeout=30).run()
    assert not page.exception
    assert metrics(page)["Events"] == "11"  # the same marts, only later
    events, users = chart_specs(page)[:2]
    for spec in (events, users):
        (note,) = layers(spec)["text"]
        assert note["encoding"]["text"] == {"value": PARTIAL_NOTE}
    assert any("still in progress" in caption.value for caption in page.caption)


# Measured in Chromium: beside the sidebar, a 1280 px window leaves the page's main column
# about 820 px wide.
MAIN_COLUMN_PX = 820


def shown_columns(app: AppTest) -> dict[str, int]:
    """The daily metrics table's columns, in order, with their widths."""
    proto = app.dataframe[0].proto
    config = json.loads(proto.columns)
    return {column: config[column]["width"] for column in proto.column_order}


def test_daily_metrics_table_fits_a_1280px_window(page: AppTest) -> None:
    page.run()
    columns = shown_columns(page)
    assert list(columns) == [
        "activity_date",
        "company_id",
        "project_name",
        "event_count",
        "active_user_count",
        "tasks_created_count",
        "tasks_closed_count",
        "comment_count",
        "billable_hours_logged",
        "non_billable_hours_logged",
        "median_task_cycle_time_hours",
    ]
    assert sum(columns.values()) <= MAIN_COLUMN_PX
    # one company: its column goes, the project's name says it
    page.sidebar.selectbox(key="company").set_value(2).run()
    assert "company_id" not in shown_columns(page)


# --- the command --------------------------------------------------------------------------------
def test_streamlit_runs_local_headless_without_telemetry() -> None:
    command = streamlit_command(8600)
    assert command[1:5] == ["-m", "streamlit", "run", str(APP_PATH)]
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options == {
        "--server.address": "127.0.0.1",
        "--server.port": "8600",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "viewer",
    }


def test_command_refuses_a_missing_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(tmp_path))
    cli = typer.Typer()
    cli.command()(dashboard)
    result = CliRunner().invoke(cli, ["--port", "8600"])
    assert isinstance(result.exception, WarehouseNotReadyError)
    assert str(tmp_path / "warehouse.duckdb") in str(result.exception)


def test_command_parses_the_project_and_names_the_manifest_to_streamlit(
    warehouse: Path, semantic_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, str]] = []

    class Streamlit:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            started.append(env)

        def wait(self) -> int:
            return 0

    manifest = semantic_manifest_target(semantic_settings) / semantic.MANIFEST_NAME
    manifest.unlink()  # the command must write it again
    # The session's data dir: dbt parses it again partially, in seconds.
    monkeypatch.setenv("ORANGESCRUM_DATA_DIR", str(semantic_settings.data_dir))
    monkeypatch.setenv("ORANGESCRUM_DUCKDB_PATH", str(warehouse))
    monkeypatch.setattr(dashboard_command, "port_is_free", lambda port: True)
    monkeypatch.setattr(
        dashboard_command, "subprocess", SimpleNamespace(Popen=Streamlit, TimeoutExpired=None)
    )
    cli = typer.Typer()
    cli.command()(dashboard)
    result = CliRunner().invoke(cli, ["--port", "8600"])
    assert result.exit_code == 0, result.output
    [env] = started
    assert env["ORANGESCRUM_DASHBOARD_SEMANTIC_MANIFEST"] == str(manifest)
    assert env["ORANGESCRUM_DUCKDB_PATH"] == str(warehouse)
    semantic.MetricCompiler.from_file(manifest)  # MetricFlow reads what dbt wrote


# --- the demo's console output -------------------------------------------------------------------
def test_demo_simulates_30_days_by_default_and_says_what_it_costs() -> None:
    assert DemoOptions().days == demo_command.DEFAULT_DAYS == 30
    cli = typer.Typer()
    cli.command()(demo_command.demo)
    result = CliRunner().invoke(cli, ["--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert "default 30: about 10,000 events" in text
    assert re.search(r"about \d+ s on 2 cores", text), text


def known_result(problems: list[str] | None = None) -> DemoResult:
    """The counts of a real 3-day demo run (seed 42): 1,290 events, 17 redelivered, 23 late,
    2 bad messages of each kind."""
    return DemoResult(
        produced=ProduceReport(
            events=1307,
            duplicates=17,
            late=23,
            bad_by_kind=Counter(dict.fromkeys(BAD_KINDS, 2)),
            event_ids={f"event-{number}" for number in range(1290)},
        ),
        streamed=StreamTotals(
            batches=1,
            rows_in=1319,
            rows_landed=1307,
            rows_dead_lettered=12,
            dead_letter_reasons=dict(Counter(EXPECTED_REASON[kind] for kind in BAD_KINDS * 2)),
        ),
        warehouse=WarehouseCounts(
            raw_rows=1307,
            raw_distinct_events=1290,
            dead_letters=12,
            fact_activities=1290,
            fact_distinct_events=1290,
        ),
        problems=problems or [],
    )


def summary_lines(settings: Settings, result: DemoResult, width: int) -> list[str]:
    console = Console(record=True, width=width, force_terminal=False)
    print_summary(settings, result, console)
    return [line.rstrip() for line in console.export_text().splitlines()]


@pytest.mark.parametrize(
    ("label", "count", "meaning"),
    [
        (
            "messages produced to Kafka",
            "1,319",
            "distinct events + duplicate deliveries + bad messages",
        ),
        ("  distinct events", "1,290", "actions in the app, one event_id each"),
        ("  duplicate deliveries", "17", "an event sent twice: lands, dropped in staging"),
        ("  bad messages", "12", "broken on purpose (6 kinds): must be dead-lettered"),
        ("  late events", "23", "delivered hours to days late: a subset of landed"),
        ("read by Spark", "1,319", "must equal produced: nothing lost on the way"),
        (
            "landed in the lake (raw_events)",
            "1,307",
            "must equal distinct events + duplicates, late included",
        ),
        ("dead-lettered", "12", "must equal bad messages; by reason:"),
        ("  missing_key", "2", "no Kafka key (it must be the company_id)"),
        ("  not_confluent_avro", "2", "no Confluent framing (magic byte 0, schema id)"),
        ("  timestamp_out_of_range", "4", "event time too far in the past or in the future"),
        ("rows in fact_activities", "1,290", "must equal distinct events: duplicates removed"),
    ],
)
def test_summary_explains_each_count_in_one_line(
    settings: Settings, label: str, count: str, meaning: str
) -> None:
    # 100 columns: a usual terminal still holds every row on one line
    lines = summary_lines(settings, known_result(), width=100)
    pattern = re.compile(rf"^\s*{re.escape(label)}\s+{re.escape(count)}\s+{re.escape(meaning)}$")
    assert [line for line in lines if pattern.match(line)], "\n".join(lines)


def test_summary_says_what_reconciles(settings: Settings) -> None:
    lines = summary_lines(settings, known_result(), width=100)
    assert 'all counts reconcile: every "must equal" above holds' in lines
    mismatch = summary_lines(settings, known_result(["stream read 1 of 2 messages"]), 100)
    assert "MISMATCH: stream read 1 of 2 messages" in mismatch
    assert not [line for line in mismatch if "all counts reconcile" in line]


def test_summary_names_the_schema_registry(settings: Settings) -> None:
    url = "http://127.0.0.1:8080/apis/ccompat/v7"
    own = replace(known_result(), registry_url=url, schema_ids={1: 1, 2: 2})
    assert (
        f"registry:  {url} (stopped with the demo; `orangescrum registry start` serves the "
        "same ids again)"
    ) in summary_lines(settings, own, width=100)
    external = replace(known_result(), registry_url="https://registry.example.com")
    assert "registry:  https://registry.example.com" in summary_lines(settings, external, 100)


def test_the_demo_starts_a_registry_only_without_a_url(settings: Settings, tmp_path) -> None:
    external = settings.model_copy(update={"schema_registry_url": "http://elsewhere:8081"})
    assert demo_registry(external) is None
    unbuilt = settings.model_copy(update={"jar_cache_dir": tmp_path / "empty-cache"})
    with pytest.raises(OrangeScrumError) as refused:
        demo_registry(unbuilt)
    assert str(refused.value) == (
        "The demo's schema registry (Apicurio Registry 2.4.2.Final) is not built in "
        f"{tmp_path / 'empty-cache'}: run `orangescrum registry build` once (`make setup` "
        "does it), or set ORANGESCRUM_SCHEMA_REGISTRY_URL to a running registry."
    )


def test_dbt_statuses_are_explained_one_a_line() -> None:
    assert dbt_status_lines({"no-op": 2, "pass": 92, "success": 16}) == [
        "16 success  models built (tables and views in the warehouse)",
        "92 pass     data tests and unit tests that passed",
        " 2 no-op    exposures (the dashboards on the marts): recorded for lineage, nothing to run",
    ]


def test_stream_progress_says_where_the_spark_step_is() -> None:
    state = StreamProgress(produced=10_310)
    assert state.describe() == "starting Spark (a local JVM)"
    state.spark_started = True
    assert state.describe() == (
        "0 of 10,310 messages read: 0 landed, 0 dead-lettered · starting the stream"
    )
    state.stream_status = "Getting offsets from KafkaV2[Subscribe[events-raw]]"
    assert state.describe().endswith("· Getting offsets from KafkaV2[Subscribe[events-raw]]")
    state.tasks_done, state.tasks_total = 1, 3
    assert state.describe().endswith("· batch 0 running: Spark tasks 1/3")
    state.batches, state.landed, state.dead_lettered = 1, 10_298, 12
    state.tasks_done = state.tasks_total = 0
    assert state.read == 10_310
    assert state.describe() == "10,310 of 10,310 messages read: 10,298 landed, 12 dead-lettered"


def write_metrics_row(settings: Settings, batch_id: int, landed: int, dead: int) -> None:
    moment = dt.datetime(2024, 3, 6, 12, batch_id, tzinfo=dt.UTC)
    row = {
        "landing_id": "demo",
        "batch_id": batch_id,
        "started_at": moment,
        "finished_at": moment,
        "duration_seconds": 1.0,
        "rows_in": landed + dead,
        "rows_landed": landed,
        "rows_dead_lettered": dead,
        "dead_letter_reasons": "{}",
        "end_offsets": "{}",
        "lag_total": 0,
    }
    path = Path(settings.lake.metrics_file("demo", batch_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([row], schema=METRICS_SCHEMA), path)


def test_stream_progress_counts_the_batches_that_landed(settings: Settings) -> None:
    state = StreamProgress(produced=5_012)
    poll_stream(settings, None, state)  # no metrics yet: nothing landed
    assert (state.batches, state.read) == (0, 0)
    write_metrics_row(settings, 0, landed=2_488, dead=12)
    write_metrics_row(settings, 1, landed=2_500, dead=0)
    poll_stream(settings, None, state)
    assert (state.batches, state.landed, state.dead_lettered) == (2, 4_988, 12)


@pytest.mark.slow
def test_stream_progress_reads_an_idle_spark_session(settings: Settings, spark: Any) -> None:
    state = StreamProgress(produced=10, spark_started=True)
    poll_stream(settings, spark, state)
    assert (state.tasks_done, state.tasks_total, state.stream_status) == (0, 0, "")
