"""The dashboard on a tiny warehouse: its queries, its Streamlit page, its command.

The warehouse is a DuckDB file whose marts have exactly the columns and types of the dbt
contracts (read from _marts__models.yml), so a renamed mart column breaks these tests.

Rows (company 1: Apollo 10, Borealis 20; company 2: Cosmos 30; -1 is "No project"; user -1
is the unknown member). fact_activities:

    day    proj  events (user)                                            hours
    03-04   10   e1 task_created (11), e2 task_commented (12),            e3: 2.0 billable
                 e3 time_logged (11)
    03-04   -1   e4 user_logged_in (-1)
    03-05   10   e5 task_status_changed (11), e6 timer_stopped (13)       e6: 0.5 non-billable
    03-05   20   e7 task_status_changed (12)
    03-06   10   e8 task_status_changed (11), e9 time_logged (11)         e9: 0.5 billable
    03-06   30   e10 task_created (21), e11 time_logged (21)              e11: 4.0 non-billable

agg_daily_metrics holds the same days, plus closings and daily cycle-time medians:
10 closes 1 task on 03-05 (median 10 h) and 1 on 03-06 (median 20 h), 20 closes 1 on 03-05
(median 30 h). Hours are sums of binary-exact values, so they compare exactly.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import typer
import yaml
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from orangescrum import REPO_ROOT
from orangescrum.cli.dashboard import APP_PATH, dashboard, streamlit_command
from orangescrum.dashboard import queries
from orangescrum.dashboard.queries import Filters, WarehouseNotReadyError

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
FACT = [  # event_id, event_type, event_category, company, user, project, day, hours, billable
    ("e1", "task_created", "task", 1, 11, 10, DAY_1, None, None),
    ("e2", "task_commented", "task", 1, 12, 10, DAY_1, None, None),
    ("e3", "time_logged", "time", 1, 11, 10, DAY_1, 2.0, True),
    ("e4", "user_logged_in", "user", 1, -1, -1, DAY_1, None, None),
    ("e5", "task_status_changed", "task", 1, 11, 10, DAY_2, None, None),
    ("e6", "timer_stopped", "time", 1, 13, 10, DAY_2, 0.5, False),
    ("e7", "task_status_changed", "task", 1, 12, 20, DAY_2, None, None),
    ("e8", "task_status_changed", "task", 1, 11, 10, DAY_3, None, None),
    ("e9", "time_logged", "time", 1, 11, 10, DAY_3, 0.5, True),
    ("e10", "task_created", "task", 2, 21, 30, DAY_3, None, None),
    ("e11", "time_logged", "time", 2, 21, 30, DAY_3, 4.0, False),
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
            "event_id, event_type, event_category, company_id, user_id, project_id, "
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


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path / "warehouse.duckdb")


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
def test_kpis(connection: duckdb.DuckDBPyConnection, filters: Filters, expected: tuple) -> None:
    row = queries.kpis(connection, filters).to_dict("records")
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


# --- the Streamlit page -------------------------------------------------------------------------
@pytest.fixture
def page(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ORANGESCRUM_DUCKDB_PATH", str(warehouse))
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
        writer.execute(
            f"update {queries.MARTS_SCHEMA}.agg_daily_metrics set event_count = event_count + 1 "
            "where activity_date = '2024-03-04' and project_id = 10"
        )
    stat = warehouse.stat()  # guard against a coarse file-system clock
    os.utime(warehouse, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    page.run()
    assert metrics(page)["Events"] == "12"


def test_page_without_warehouse_explains_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORANGESCRUM_DUCKDB_PATH", str(tmp_path / "absent.duckdb"))
    page = AppTest.from_file(str(APP_PATH), default_timeout=30).run()
    assert not page.exception
    assert "make demo" in page.error[0].value
    assert not page.metric


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
