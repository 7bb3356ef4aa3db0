"""raw_events keeps days whose raw files maintenance archived, through their processed copy."""

from __future__ import annotations

import shutil

import pytest

from orangescrum.warehouse.load import processed_zone_has_files

pytestmark = pytest.mark.slow


def test_archived_days_stay_in_raw_events_via_processed(make_warehouse) -> None:
    warehouse = make_warehouse("zones")
    warehouse.dbt("run-operation", "create_raw_events")
    before = warehouse.query(
        "select count(distinct event_id), count(distinct event_date) from orangescrum_dw.raw_events"
    )[0]

    raw_days = sorted((warehouse.lake_root / "raw/events").iterdir())
    processed = warehouse.lake_root / "processed/events"
    processed.mkdir(parents=True)
    # what `warehouse load` tells create_raw_events (BigQuery cannot list the zone itself)
    assert not processed_zone_has_files(warehouse.settings)
    # The oldest day is compacted (copied) and then archived (its raw folder moved away).
    shutil.copytree(raw_days[0], processed / raw_days[0].name)
    shutil.move(raw_days[0], warehouse.lake_root / "archive" / raw_days[0].name)
    # A second day exists in both zones: staging's dedup counts its events once.
    shutil.copytree(raw_days[1], processed / raw_days[1].name)
    assert processed_zone_has_files(warehouse.settings)
    warehouse.dbt("run-operation", "create_raw_events")

    after = warehouse.query(
        "select count(distinct event_id), count(distinct event_date) from orangescrum_dw.raw_events"
    )[0]
    assert after == before
    warehouse.dbt("build", "--select", "stg_orangescrum__events")
    staged = warehouse.query(
        "select count(*), count(distinct event_id) "
        "from orangescrum_dw_staging.stg_orangescrum__events"
    )[0]
    assert staged == (before[0], before[0])
