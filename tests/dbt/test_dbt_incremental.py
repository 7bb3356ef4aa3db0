"""Late data and the lookback window of fact_activities (var lookback_days, default 3).

Friday's build (run_date 2024-03-08) first; then Saturday's batch (run_date 2024-03-09,
window 03-06..03-09) brings events three days late, which the incremental run must put in
their own day; then an event five days late, which only a full refresh recovers and which the
reconciliation test reports until then. Saturday's files use contract v2 (adds `client`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from ingestion.simulator import Delivery, SimulationConfig, simulate_history
from tests.dbt.conftest import Warehouse, new_warehouse
from tests.dbt.lake import LATE_EVENTS, TOO_LATE_EVENTS, event_uuid, write_batch, write_deliveries

pytestmark = pytest.mark.slow

SATURDAY = "2024-03-09"
RECONCILIATION_TEST = "test.orangescrum.assert_fact_activities_reconciles_with_raw_events"


def fact_rows(warehouse: Warehouse, numbers: list[int]) -> list[tuple[str, date, bool]]:
    ids = ", ".join(f"'{event_uuid(number)}'" for number in numbers)
    return warehouse.query(
        "select event_id, activity_date, is_late_arrival from orangescrum_dw_marts.fact_activities "
        f"where event_id in ({ids}) order by event_id"
    )


def agg_day(warehouse: Warehouse, day: str, project_id: int) -> tuple[int, int, float]:
    return warehouse.query(
        "select event_count, comment_count, billable_hours_logged "
        "from orangescrum_dw_marts.agg_daily_metrics "
        f"where activity_date = date '{day}' and project_id = {project_id}"
    )[0]


def test_late_events_land_in_their_day_and_too_late_ones_are_flagged(
    make_warehouse: Callable[[str], Warehouse],
) -> None:
    warehouse = make_warehouse("late")
    warehouse.dbt("run-operation", "create_raw_events")
    warehouse.dbt("run")  # Friday, 2024-03-08
    assert agg_day(warehouse, "2024-03-06", 100) == (4, 0, 0.0)

    # Saturday: a login (36), a comment (37) and 1 h billable (38) from Wednesday the 6th
    write_batch(warehouse.lake_root, LATE_EVENTS, "part-1.parquet")
    incremental = warehouse.dbt("build", run_date=SATURDAY)
    fact_model = next(r for r in incremental.result.results if r.node.name == "fact_activities")
    assert fact_model.node.config.materialized == "incremental"
    assert fact_rows(warehouse, [36, 37, 38]) == [
        (event_uuid(36), date(2024, 3, 9), False),
        (event_uuid(37), date(2024, 3, 6), True),
        (event_uuid(38), date(2024, 3, 6), True),
    ]
    assert warehouse.query("select count(*) from orangescrum_dw_marts.fact_activities") == [(38,)]
    # Wednesday, project 100: 4 events + 37 + 38, one comment, one billable hour
    assert agg_day(warehouse, "2024-03-06", 100) == (6, 1, 1.0)
    # Saturday's files are v2 (with `client`), the week's are v1: both read through one view
    channels = warehouse.query(
        "select client_channel, count(*) from orangescrum_dw_marts.fact_activities "
        "group by client_channel order by client_channel"
    )
    assert channels == [("email", 1), ("mobile", 1), (None, 36)]  # 37 email, 36 mobile

    # A comment from Monday the 4th, five days late: outside the window of this run
    write_batch(warehouse.lake_root, TOO_LATE_EVENTS, "part-2.parquet")
    flagged = warehouse.dbt(
        "build",
        "--select",
        "stg_orangescrum__events fact_activities",
        run_date=SATURDAY,
        check=False,
    )
    failures = {r.node.unique_id: r.failures for r in flagged.result.results if r.failures}
    assert failures == {RECONCILIATION_TEST: 1}
    assert fact_rows(warehouse, [39]) == []

    # The documented fix: rebuild staging and everything that depends on it
    warehouse.dbt(
        "build", "--full-refresh", "--select", "stg_orangescrum__events+", run_date=SATURDAY
    )
    assert fact_rows(warehouse, [39]) == [(event_uuid(39), date(2024, 3, 4), True)]
    assert warehouse.query("select count(*) from orangescrum_dw_marts.fact_activities") == [(39,)]
    # Monday, project 100: 4-8 and the late comment 39
    assert agg_day(warehouse, "2024-03-04", 100) == (6, 1, 0.0)


def test_data_tests_check_the_latest_load_unless_test_scope_is_all(
    make_warehouse: Callable[[str], Warehouse],
) -> None:
    warehouse = make_warehouse("scope")
    warehouse.dbt("run-operation", "create_raw_events")
    warehouse.dbt("run")
    # A second copy of event 1 with the loaded_at of an earlier run: it breaks the grain,
    # outside the rows the latest run wrote
    warehouse.query(
        "insert into orangescrum_dw_marts.fact_activities "
        "select * replace (loaded_at - interval 1 day as loaded_at) "
        f"from orangescrum_dw_marts.fact_activities where event_id = '{event_uuid(1)}'"
    )

    def failures(**dbt_vars: str) -> dict[str, int]:
        result = warehouse.dbt(
            "test", "--select", "fact_activities,test_name:unique", check=False, **dbt_vars
        )
        assert len(result.result.results) == 1  # the event_id unique test, nothing else
        return {r.node.name: r.failures for r in result.result.results if r.failures}

    assert failures() == {}
    assert failures(test_scope="all") == {"unique_fact_activities_event_id": 1}


def test_daily_incremental_runs_end_where_a_full_rebuild_does(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A week of simulated deliveries, 5% up to three days late, 2% delivered twice: a first
    build, then one incremental run per delivery day, leaves every model exactly as one full
    rebuild over the same lake does (loaded_at aside)."""
    warehouse = new_warehouse(tmp_path_factory.mktemp("daily"))
    config = SimulationConfig(
        seed=5, companies=2, days=8, start_date=date(2024, 3, 1), late_rate=0.05,
        duplicate_rate=0.02, max_late_days=3,
    )  # fmt: skip
    by_delivery_day: dict[date, list[Delivery]] = defaultdict(list)
    for delivery in simulate_history(config):
        by_delivery_day[delivery.delivered_at.date()].append(delivery)
    delivery_days = sorted(by_delivery_day)
    assert sum(d.is_late for d in by_delivery_day[delivery_days[5]]) > 0  # late data to absorb

    offset = 0
    for number, day in enumerate(delivery_days):
        offset += write_deliveries(
            warehouse.lake_root, by_delivery_day[day], f"batch-{number}.parquet", offset
        )
        if number < 4:
            continue  # the first build sees the first five days at once
        if number == 4:
            warehouse.dbt("run-operation", "create_raw_events")
        warehouse.dbt("run", run_date=day.isoformat())

    models = [
        row[0]
        for row in warehouse.query(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where schema_name in ('orangescrum_dw_intermediate', 'orangescrum_dw_marts', "
            "'orangescrum_dw_staging') order by 1"
        )
    ]
    assert len(models) == 21  # staging events, 8 intermediate, 12 marts

    def contents() -> dict[str, list[tuple[Any, ...]]]:
        # Sums of doubles depend on the order rows are added in: compare them to 1e-9.
        return {
            model: [
                tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                for row in warehouse.query(
                    f"select columns(lambda c: c <> 'loaded_at') from {model} order by all"
                )
            ]
            for model in models
        }

    # The marts keyed by entity rewrote what the last day touched, not their whole history
    last_load = "(select max(loaded_at) from orangescrum_dw_staging.stg_orangescrum__events)"
    for model, touched_every_day in [
        ("dim_tasks", True),
        ("dim_tasks_history", True),
        ("fact_time_entries", True),
        ("dim_users_history", False),
        ("dim_projects_history", False),
    ]:
        rewritten, total = warehouse.query(
            f"select count(*) filter (where loaded_at = {last_load}), count(*) "
            f"from orangescrum_dw_marts.{model}"
        )[0]
        assert rewritten < total, model
        assert rewritten > 0 or not touched_every_day, model

    incremental = contents()
    warehouse.dbt("run", "--full-refresh", run_date=delivery_days[-1].isoformat())
    rebuilt = contents()
    assert {m: len(rows) for m, rows in incremental.items()} == {
        m: len(rows) for m, rows in rebuilt.items()
    }
    for model in models:
        assert incremental[model] == rebuilt[model], model


def test_primary_key_test_fails_on_a_repeated_or_null_key(
    make_warehouse: Callable[[str], Warehouse],
) -> None:
    warehouse = make_warehouse("primary_key")
    warehouse.dbt("run-operation", "create_raw_events")
    warehouse.dbt("run", "--select", "stg_orangescrum__events int_project_tasks")

    def failures() -> dict[str, int]:
        result = warehouse.dbt(
            "test", "--select", "int_project_tasks,test_name:primary_key", check=False
        )
        assert len(result.result.results) == 1
        return {r.node.name: r.failures for r in result.result.results if r.failures}

    assert failures() == {}
    # one pair twice, one pair without a project, both in the latest load
    warehouse.query(
        "insert into orangescrum_dw_intermediate.int_project_tasks "
        "select * from orangescrum_dw_intermediate.int_project_tasks limit 1"
    )
    warehouse.query(
        "insert into orangescrum_dw_intermediate.int_project_tasks "
        "select null, task_id, loaded_at from orangescrum_dw_intermediate.int_project_tasks "
        "limit 1"
    )
    assert failures() == {
        "primary_key_int_project_tasks_project_id__task_id": 2,
    }
