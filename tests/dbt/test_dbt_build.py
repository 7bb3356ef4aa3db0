"""`dbt build` on the fixture lake: every test passes and the marts hold the hand-computed values.

Expected numbers come from the events listed in tests/dbt/lake.py (event numbers in comments).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, datetime

import pytest
from dbt.cli.main import dbtRunnerResult

from tests.dbt.conftest import MARTS, PII_SALT, Warehouse
from tests.dbt.lake import EVENTS, event_uuid

pytestmark = pytest.mark.slow


def test_build_runs_every_model_test_and_unit_test(
    first_build: tuple[Warehouse, dbtRunnerResult],
) -> None:
    _, result = first_build
    by_type = Counter(r.node.resource_type for r in result.result.results)
    statuses = Counter(str(r.status) for r in result.result.results)
    assert by_type["model"] == 23  # 3 staging, 8 intermediate, 12 marts
    assert by_type["unit_test"] >= 9
    assert by_type["test"] >= 80
    assert set(statuses) == {"success", "pass", "no-op"}  # no-op: the exposures


def test_staging_keeps_first_delivery_of_duplicated_event(built_warehouse: Warehouse) -> None:
    raw_rows = built_warehouse.query("select count(*) from orangescrum_dw.raw_events")
    assert raw_rows == [(len(EVENTS) + 1,)]  # event 16 landed twice
    kept = built_warehouse.query(
        "select kafka_partition, ingested_at from orangescrum_dw_staging.stg_orangescrum__events "
        f"where event_id = '{event_uuid(16)}'"
    )
    # the first delivery: partition 0, 5 s after 11:00 (the redelivery came at 11:10)
    assert kept == [(0, datetime(2024, 3, 5, 11, 0, 5))]


def test_fact_activities_one_row_per_event(built_warehouse: Warehouse) -> None:
    counts = built_warehouse.rows(
        """
        select
            count(*) as events,
            count(distinct event_id) as event_ids,
            sum(case when project_id = -1 then 1 else 0 end) as outside_projects,
            sum(case when is_late_arrival then 1 else 0 end) as late,
            sum(logged_hours) as hours
        from orangescrum_dw_marts.fact_activities
        """
    )[0]
    assert counts == {
        "events": 35,  # events 1-35, the duplicate of 16 removed
        "event_ids": 35,
        "outside_projects": 7,  # 1, 2, 3, 9 (login), 23 (role), 29 (disable), 35 (login)
        "late": 1,  # 28: happened on the 5th, ingested on the 7th
        "hours": 4.0,  # 19: 1.5 + 22: 2.0 + 33: 0.5 (27 is an approval: no hours)
    }
    late = built_warehouse.rows(
        "select activity_date, ingestion_delay_seconds from orangescrum_dw_marts.fact_activities "
        f"where event_id = '{event_uuid(28)}'"
    )
    assert late == [{"activity_date": date(2024, 3, 5), "ingestion_delay_seconds": 43 * 3600}]


def test_dim_users_current_state_and_history(built_warehouse: Warehouse) -> None:
    users = {
        row["user_id"]: row
        for row in built_warehouse.rows("select * from orangescrum_dw_marts.dim_users")
    }
    assert sorted(users) == [-1, 10, 11, 12, 13]  # the unknown member + four users
    alice, bob, carol, inferred, unknown = (users[key] for key in (10, 11, 12, 13, -1))
    # Alice: registered (1), re-sent unchanged when added to project 200 (11): one version
    assert (alice["user_role"], alice["state_version_count"]) == ("owner", 1)
    assert alice["last_login_at"] == datetime(2024, 3, 8, 8, 0)  # 35
    # Bob: invited as member (2), promoted to admin (23): two versions, current since the 6th
    assert (bob["user_role"], bob["state_version_count"]) == ("admin", 2)
    assert bob["state_valid_from"] == datetime(2024, 3, 6, 10, 0)
    assert bob["registered_at"] == datetime(2024, 3, 4, 9, 30)
    # Carol: disabled (29), then removed from project 100 with the same payload (30)
    assert (carol["is_active"], carol["state_version_count"]) == (False, 2)
    assert carol["disabled_at"] == datetime(2024, 3, 7, 17, 0)
    # PII is masked in staging: initials, and the salted hash of the e-mail
    assert carol["user_initials"] == "C. D."  # Carol Diaz
    salted = (PII_SALT + "carol@example.com").encode()
    assert carol["user_email_hash"] == hashlib.sha256(salted).hexdigest()
    # 13 only ever logged in (9): an inferred member, key real, attributes unknown
    assert inferred["is_inferred_member"] and inferred["user_initials"] is None
    assert inferred["last_login_at"] == datetime(2024, 3, 4, 13, 0)
    assert unknown["is_unknown_member"] and unknown["user_initials"] == "Unknown user"


# Anything shaped like an e-mail address: local part, @, domain with a dot.
EMAIL_SHAPE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+[.][A-Za-z0-9.-]+"


def test_no_mart_holds_anything_shaped_like_an_email(built_warehouse: Warehouse) -> None:
    text_columns = built_warehouse.rows(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'orangescrum_dw_marts' and data_type = 'VARCHAR'"
    )
    assert len(text_columns) > 20  # every mart's string columns, not an empty scan
    leaks = {}
    for column in text_columns:
        table, name = column["table_name"], column["column_name"]
        ((count,),) = built_warehouse.query(
            f'select count(*) from orangescrum_dw_marts."{table}" '
            f"""where regexp_matches("{name}", '{EMAIL_SHAPE}')"""
        )
        if count:
            leaks[(table, name)] = count
    assert leaks == {}
    # The lake keeps the raw payload: the same scan finds the addresses there.
    ((raw_addresses,),) = built_warehouse.query(
        "select count(distinct user_state.email) from orangescrum_dw.raw_events "
        f"where regexp_matches(user_state.email, '{EMAIL_SHAPE}')"
    )
    assert raw_addresses == 3  # Alice, Bob and Carol


def test_dim_projects_current_state_members_and_owner(built_warehouse: Warehouse) -> None:
    projects = built_warehouse.rows(
        """
        select project_id, owner_user_id, project_name, project_status, member_count,
            task_count, state_version_count, archived_at
        from orangescrum_dw_marts.dim_projects order by project_id
        """
    )
    assert projects == [
        {"project_id": -1, "owner_user_id": None, "project_name": "No project",
         "project_status": None, "member_count": 0, "task_count": 0,
         "state_version_count": 0, "archived_at": None},
        # members: Bob (5) and Carol (6) added, Carol removed (30); tasks 1000-1003
        {"project_id": 100, "owner_user_id": 10, "project_name": "Website",
         "project_status": "active", "member_count": 1, "task_count": 4,
         "state_version_count": 1, "archived_at": None},
        # created (10) then archived (34); Alice added (11); task 2000
        {"project_id": 200, "owner_user_id": 11, "project_name": "Support",
         "project_status": "archived", "member_count": 1, "task_count": 1,
         "state_version_count": 2, "archived_at": datetime(2024, 3, 8, 12, 0)},
    ]  # fmt: skip


def test_dim_tasks_hold_the_current_state_and_lifecycle(built_warehouse: Warehouse) -> None:
    tasks = built_warehouse.query(
        "select task_id, project_id, task_status, task_type, is_inferred_member, "
        "cycle_time_hours from orangescrum_dw_marts.dim_tasks order by task_id"
    )
    assert tasks == [
        (1000, 100, "Closed", "development", False, 30.0),  # closed, reopened, closed
        (1001, 100, "Closed", "bug", False, 20.0),
        (1002, 100, "Closed", "update", False, 30.0),
        (1003, 100, "Closed", "maintenance", False, None),  # created before the history
        (2000, 200, "Closed", "maintenance", False, 48.0),
    ]


def test_dim_companies_count_users_and_projects(built_warehouse: Warehouse) -> None:
    companies = built_warehouse.query(
        "select company_id, user_count, enabled_user_count, project_count, "
        "first_activity_at, last_activity_at from orangescrum_dw_marts.dim_companies"
    )
    # users 10-13 (12 disabled, 13 inferred: unknown state); projects 100 and 200
    assert companies == [
        (1, 4, 2, 2, datetime(2024, 3, 4, 9, 0), datetime(2024, 3, 8, 12, 0)),
    ]


def test_dim_dates_is_a_fixed_calendar_around_the_activity(built_warehouse: Warehouse) -> None:
    [(first, last, days)] = built_warehouse.query(
        "select min(date_day), max(date_day), count(*) from orangescrum_dw_marts.dim_dates"
    )
    # calendar_start_date to run_date (2024-03-08) + 5 years, every day once
    assert (first, last) == (date(2015, 1, 1), date(2029, 3, 8))
    assert days == (last - first).days + 1
    week = built_warehouse.query(
        "select date_day, iso_week_number, iso_day_of_week_number, is_weekend "
        "from orangescrum_dw_marts.dim_dates "
        "where date_day between '2024-03-04' and '2024-03-10' order by date_day"
    )
    # Monday 4 to Sunday 10 March 2024, ISO week 10
    assert week == [(date(2024, 3, day), 10, day - 3, day >= 9) for day in range(4, 11)]


AGG_COLUMNS = (
    "event_count, active_user_count, tasks_created_count, tasks_closed_count, comment_count, "
    "billable_hours_logged, non_billable_hours_logged, median_task_cycle_time_hours"
)


def test_agg_daily_metrics_hand_computed(built_warehouse: Warehouse) -> None:
    rows = built_warehouse.query(
        f"select activity_date, project_id, {AGG_COLUMNS} "
        "from orangescrum_dw_marts.agg_daily_metrics order by activity_date, project_id"
    )
    march = lambda day: date(2024, 3, day)  # noqa: E731
    assert rows == [
        # events, users, created, closed, comments, billable h, non-billable h, median h
        (march(4), -1, 4, 2, 0, 0, 0, 0.0, 0.0, None),  # 1, 2, 3 (Alice), 9 (user 13)
        (march(4), 100, 5, 1, 2, 0, 0, 0.0, 0.0, None),  # 4-8 by Alice; tasks 1000, 1001
        # 12-22 + late 28; closes 1001 (20 h) and 1000 (30 h): median 25 h
        (march(5), 100, 11, 2, 1, 2, 3, 2.0, 1.5, 25.0),
        (march(5), 200, 3, 1, 1, 0, 0, 0.0, 0.0, None),  # 10, 11, 15 by Bob
        (march(6), -1, 1, 1, 0, 0, 0, 0.0, 0.0, None),  # 23
        # 24, 25 (1000 closed again), 26 (1002 first closed, 30 h), 27 (approval, no hours)
        (march(6), 100, 4, 2, 0, 2, 0, 0.0, 0.0, 30.0),
        (march(7), -1, 1, 1, 0, 0, 0, 0.0, 0.0, None),  # 29
        (march(7), 100, 2, 2, 0, 1, 0, 0.0, 0.0, None),  # 30, 32 (1003: no creation seen)
        (march(7), 200, 2, 2, 0, 1, 0, 0.5, 0.0, 48.0),  # 31 (2000 closed, 48 h), 33
        (march(8), -1, 1, 1, 0, 0, 0, 0.0, 0.0, None),  # 35
        (march(8), 200, 1, 1, 0, 0, 0, 0.0, 0.0, None),  # 34
    ]


def test_dead_letters_and_pipeline_metrics_staged(built_warehouse: Warehouse) -> None:
    dead_letters = built_warehouse.query(
        "select dead_letter_id, dead_letter_reason, raw_value_size_bytes "
        "from orangescrum_dw_staging.stg_orangescrum__dead_letters order by dead_letter_id"
    )
    assert dead_letters == [
        ("events-raw/0/90", "undecodable", 8),
        ("events-raw/0/91", "event_too_old", 8),
    ]
    batches = built_warehouse.query(
        "select landing_id, batch_id, landed_row_count from "
        "orangescrum_dw_staging.stg_orangescrum__pipeline_metrics order by all"
    )
    # Each stream's own batch 0; of the replayed batch 1, the last attempt.
    assert batches == [("appdb-c1", 0, 5), ("events-a1", 0, 34), ("events-a1", 1, 2)]


def test_source_freshness_is_configured_and_measured(built_warehouse: Warehouse) -> None:
    # The fixture's data is from 2024: raw_events and raw_pipeline_metrics are stale.
    result = built_warehouse.dbt("source", "freshness", check=False)
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    assert statuses == {"raw_events": "error", "raw_pipeline_metrics": "error"}


def test_second_build_leaves_the_marts_identical(built_warehouse: Warehouse) -> None:
    before = built_warehouse.snapshot()
    built_warehouse.dbt("build")  # an incremental run of fact_activities over the window
    after = built_warehouse.snapshot()
    for model in MARTS:
        assert after[model] == before[model], model
