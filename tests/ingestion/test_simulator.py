"""The simulator's promises, checked by replaying the records it emits.

Each test rebuilds the state it needs (memberships, roles, task status) from the event stream
itself, the way a downstream consumer would, instead of peeking at simulator internals.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import itertools
import json
from collections import Counter, defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import fastavro
import pytest

from ingestion import simulator
from ingestion.simulator import Delivery, SimulationConfig, iter_live, simulate_history
from orangescrum.core.contract.events import (
    EVENT_TYPES,
    TASK_EVENT_TYPES,
    TASK_STATUS_LEGEND,
    USER_EVENT_TYPES,
)
from orangescrum.core.contract.schema import latest_version, schema_path

# The simulator is the app: it writes the newest version of the contract.
SCHEMA_PATH = schema_path(latest_version())
UTC = datetime.UTC
# A Monday; the fortnight spans two weekends and the US switch to summer time (2024-03-10).
START = datetime.date(2024, 3, 4)
FORTNIGHT = SimulationConfig(
    seed=7, days=14, start_date=START, late_rate=0.05, max_late_days=2, duplicate_rate=0.03
)
SMALL = SimulationConfig(seed=11, days=2, start_date=START, late_rate=0.1, duplicate_rate=0.1)

# The status legend as a state machine, written out independently of the simulator.
ALLOWED_TRANSITIONS = {
    ("New", "Opened"),  # triaged
    ("Opened", "Start"),  # work begins
    ("Start", "Resolved"),  # work done
    ("Resolved", "Closed"),  # accepted
    ("Resolved", "Opened"),  # reopened from review
    ("Closed", "Opened"),  # reopened after closing
    ("Opened", "Modified"),  # requirements edited
    ("Start", "Modified"),
    ("Resolved", "Modified"),
    ("Modified", "Start"),  # back to work on the edited task
}
MEMBER_EVENTS = {"project_member_added", "project_member_removed"}
TIME_LOG_EVENTS = {"timer_stopped", "time_logged", "time_entry_approved", "time_entry_rejected"}


@pytest.fixture(scope="module")
def fortnight() -> list[Delivery]:
    return list(simulate_history(FORTNIGHT))


@pytest.fixture(scope="module")
def events(fortnight: list[Delivery]) -> list[dict[str, Any]]:
    """Each event once, in the order it happened (per company the clock is strictly rising)."""
    originals = [d.record for d in fortnight if not d.is_duplicate]
    return sorted(originals, key=lambda r: (r["event_timestamp"], r["company_id"]))


@pytest.fixture(scope="module")
def user_zones(events: list[dict[str, Any]]) -> dict[int, ZoneInfo]:
    return {
        r["user_state"]["user_id"]: ZoneInfo(r["user_state"]["timezone"])
        for r in events
        if r["user_state"] is not None
    }


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_sequence() -> None:
    assert list(simulate_history(SMALL)) == list(simulate_history(SMALL))


def test_different_seed_gives_different_history() -> None:
    other = dataclasses.replace(SMALL, seed=SMALL.seed + 1)
    first = [d.record["event_id"] for d in simulate_history(SMALL)]
    second = [d.record["event_id"] for d in simulate_history(other)]
    assert first != second


def test_default_config_volume() -> None:
    count = sum(1 for _ in simulate_history(SimulationConfig(start_date=START)))
    assert 1_000 <= count <= 3_000  # a laptop-sized demo history


def test_default_start_is_the_days_before_today(time_machine) -> None:
    time_machine.move_to(datetime.datetime(2031, 7, 15, 23, 59, tzinfo=UTC), tick=False)
    records = [d.record for d in simulate_history(SimulationConfig(days=2, companies=1))]
    days = {r["event_timestamp"].date() for r in records}
    assert days == {datetime.date(2031, 7, 13), datetime.date(2031, 7, 14)}


@pytest.mark.parametrize("config", [SMALL, dataclasses.replace(SMALL, days=3, companies=3)])
def test_a_start_date_makes_the_history_independent_of_the_clock(
    config: SimulationConfig, time_machine
) -> None:
    # Two clocks 400 days apart, one on the far side of the date line: the history is a
    # function of the seed, the start date and the options alone.
    time_machine.move_to(datetime.datetime(2025, 1, 1, 12, tzinfo=UTC), tick=False)
    first = list(simulate_history(config))
    time_machine.move_to(datetime.datetime(2026, 2, 5, 23, 30, tzinfo=UTC), tick=False)
    second = list(simulate_history(config))
    assert first == second
    assert len(first) > 100


@pytest.mark.parametrize(
    "field, value",
    [
        ("companies", 0),  # no tenant
        ("users_per_company", 0),  # nobody to act
        ("projects_per_company", 0),  # no work to do
        ("days", 0),  # empty history
        ("max_late_days", 0),  # late would mean earlier than an hour
        ("late_rate", 1.5),  # not a share
        ("duplicate_rate", -0.1),  # not a share
        ("tasks_per_project_per_day", -1.0),  # negative rate
    ],
)
def test_invalid_config_is_rejected(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SimulationConfig(**{field: value})


# --- contract ----------------------------------------------------------------------------------


def test_every_record_encodes_against_the_contract(fortnight: list[Delivery]) -> None:
    schema = fastavro.parse_schema(json.loads(SCHEMA_PATH.read_text()))
    field_names = [f["name"] for f in json.loads(SCHEMA_PATH.read_text())["fields"]]
    for delivery in fortnight:
        assert list(delivery.record) == field_names  # every top-level field, nothing else
        fastavro.schemaless_writer(io.BytesIO(), schema, delivery.record)


def test_all_event_types_appear(events: list[dict[str, Any]]) -> None:
    assert {r["event_type"] for r in events} == set(EVENT_TYPES)


def test_timestamps_are_utc_and_inside_the_window(events: list[dict[str, Any]]) -> None:
    start = datetime.datetime.combine(START, datetime.time(), tzinfo=UTC)
    end = start + datetime.timedelta(days=FORTNIGHT.days)
    for record in events:
        assert record["event_timestamp"].utcoffset() == datetime.timedelta(0)
        assert start <= record["event_timestamp"] < end


def test_event_ids_are_seeded_uuid4_and_unique(events: list[dict[str, Any]]) -> None:
    ids = [r["event_id"] for r in events]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "4" for i in ids)  # canonical UUID, version 4


def test_entity_ids_are_positive_and_unique_across_companies(
    events: list[dict[str, Any]],
) -> None:
    owners: dict[tuple[str, int], set[int]] = defaultdict(set)
    for r in events:
        ids = {
            "user": r["user_id"],
            "project": r["project_id"],
            "task": r["task_id"],
            "time_log": (r["time_log"] or {}).get("time_log_id"),
            "comment": (r["comment"] or {}).get("comment_id"),
            "milestone": (r["milestone"] or {}).get("milestone_id"),
            "file": (r["attachment"] or {}).get("file_id"),
        }
        for kind, entity_id in ids.items():
            if entity_id is not None:
                assert entity_id > 0
                owners[kind, entity_id].add(r["company_id"])
    assert all(len(companies) == 1 for companies in owners.values())
    assert {r["company_id"] for r in events} == {1, 2}


@pytest.mark.parametrize(
    "event_types, payload",
    [
        (USER_EVENT_TYPES, "user_state"),  # the user the event is about
        (MEMBER_EVENTS, "user_state"),  # the member added or removed
        (TASK_EVENT_TYPES, "task_state"),  # the task right after the action
        (("task_commented",), "comment"),
        (("file_uploaded",), "attachment"),
        (("milestone_created",), "milestone"),
        (("project_created", "project_updated", "project_archived"), "project_state"),
        (TIME_LOG_EVENTS, "time_log"),
    ],
)
def test_payloads_present_where_expected(
    events: list[dict[str, Any]], event_types: tuple[str, ...], payload: str
) -> None:
    matching = [r for r in events if r["event_type"] in event_types]
    assert matching
    assert all(r[payload] is not None for r in matching)


def test_payloads_absent_elsewhere(events: list[dict[str, Any]]) -> None:
    allowed = {
        "comment": {"task_commented"},
        "attachment": {"file_uploaded"},
        "milestone": {"milestone_created"},
        "time_log": TIME_LOG_EVENTS,
        "project_state": {"project_created", "project_updated", "project_archived"},
    }
    for record in events:
        for payload, event_types in allowed.items():
            assert (record[payload] is not None) == (record["event_type"] in event_types)


# --- people ------------------------------------------------------------------------------------


def test_roles_and_user_types_per_company(events: list[dict[str, Any]]) -> None:
    joined = [r for r in events if r["event_type"] in ("user_registered", "user_invited")]
    for company_id in (1, 2):
        states = [r["user_state"] for r in joined if r["company_id"] == company_id]
        roles = Counter(s["role"] for s in states)
        assert len(states) == FORTNIGHT.users_per_company  # late joiners included
        assert roles["owner"] == 1
        assert roles["admin"] >= 1
        assert roles["member"] >= 1
        assert {s["user_type"] for s in states} == {"internal", "external"}
    registered = [r for r in joined if r["event_type"] == "user_registered"]
    assert all(r["user_state"]["role"] == "owner" for r in registered)
    assert all(r["user_id"] == r["user_state"]["user_id"] for r in registered)
    zones = {r["user_state"]["timezone"] for r in joined}
    assert len(zones) >= 2  # teams span time zones


def test_users_join_before_they_act(events: list[dict[str, Any]]) -> None:
    joined: set[int] = set()
    for record in events:
        if record["event_type"] in ("user_registered", "user_invited"):
            assert record["user_state"]["user_id"] not in joined  # nobody joins twice
            joined.add(record["user_state"]["user_id"])
        assert record["user_id"] in joined


def test_disabled_users_never_act_afterwards(events: list[dict[str, Any]]) -> None:
    disabled: set[int] = set()
    for record in events:
        assert record["user_id"] not in disabled
        if record["event_type"] == "user_disabled":
            assert record["user_state"]["is_active"] is False
            assert record["user_state"]["role"] != "owner"
            disabled.add(record["user_state"]["user_id"])
    assert disabled


def test_users_log_in_before_acting_each_day(
    events: list[dict[str, Any]], user_zones: dict[int, ZoneInfo]
) -> None:
    logged_in: set[tuple[int, datetime.date]] = set()
    for record in events:
        user_id = record["user_id"]
        local_day = record["event_timestamp"].astimezone(user_zones[user_id]).date()
        if record["event_type"] == "user_logged_in":
            logged_in.add((user_id, local_day))
        elif record["event_type"] in TASK_EVENT_TYPES and record["event_type"] != "task_created":
            assert (user_id, local_day) in logged_in


# --- projects and membership -------------------------------------------------------------------


def test_actors_are_members_of_the_project_at_that_time(events: list[dict[str, Any]]) -> None:
    members: dict[int, set[int]] = defaultdict(set)
    for record in events:
        project_id, actor = record["project_id"], record["user_id"]
        if record["event_type"] == "project_created":
            members[project_id].add(actor)  # the creator is a member from the first moment
        if project_id is not None:
            assert actor in members[project_id], record["event_type"]
        if record["event_type"] == "project_member_added":
            members[project_id].add(record["user_state"]["user_id"])
        elif record["event_type"] == "project_member_removed":
            members[project_id].discard(record["user_state"]["user_id"])
        elif record["event_type"] == "task_assigned":
            assert record["task_state"]["assignee_user_id"] in members[project_id]


def test_archived_projects_stay_quiet(events: list[dict[str, Any]]) -> None:
    archived: set[int] = set()
    for record in events:
        assert record["project_id"] not in archived
        if record["event_type"] == "project_archived":
            assert record["project_state"]["status"] == "archived"
            archived.add(record["project_id"])


def test_tasks_move_within_their_company(events: list[dict[str, Any]]) -> None:
    project_company = {r["project_id"]: r["company_id"] for r in events if r["project_id"]}
    task_project: dict[int, int] = {}
    moves = 0
    for record in events:
        task_id = record["task_id"]
        if record["event_type"] == "task_moved":
            assert record["project_id"] != task_project[task_id]
            assert project_company[record["project_id"]] == record["company_id"]
            moves += 1
        elif task_id is not None and record["event_type"] != "task_created":
            assert record["project_id"] == task_project[task_id]
        if task_id is not None:
            task_project[task_id] = record["project_id"]
    assert moves


# --- tasks -------------------------------------------------------------------------------------


def test_task_lifecycle_follows_the_status_legend(events: list[dict[str, Any]]) -> None:
    status: dict[int, str] = {}
    seen: set[str] = set()
    deleted: set[int] = set()
    for record in events:
        task_id, state = record["task_id"], record["task_state"]
        if task_id is None:
            continue
        assert task_id not in deleted  # nothing happens after task_deleted
        if record["event_type"] == "task_created":
            assert task_id not in status
            assert (state["status"], state["legend"]) == ("New", 1)
        else:
            assert task_id in status  # nothing happens before task_created
        if state is not None:
            assert state["legend"] == TASK_STATUS_LEGEND[state["status"]]
        if record["event_type"] == "task_status_changed":
            assert (status[task_id], state["status"]) in ALLOWED_TRANSITIONS
        elif state is not None:
            assert state["status"] == status.get(task_id, "New")  # only status changes change it
        if state is not None:
            status[task_id] = state["status"]
            seen.add(state["status"])
        if record["event_type"] == "task_deleted":
            deleted.add(task_id)
    assert seen == set(TASK_STATUS_LEGEND)


def test_task_numbers_and_milestones(events: list[dict[str, Any]]) -> None:
    milestones = {
        r["milestone"]["milestone_id"]: r["project_id"]
        for r in events
        if r["event_type"] == "milestone_created"
    }
    numbers: dict[tuple[int, int], int] = {}
    for record in events:
        state = record["task_state"]
        if state is None:
            continue
        if state["milestone_id"] is not None:
            assert milestones[state["milestone_id"]] == record["project_id"]
        key = (record["project_id"], state["task_number"])
        assert numbers.setdefault(key, record["task_id"]) == record["task_id"]


# --- time tracking -----------------------------------------------------------------------------


def test_time_logs_have_positive_durations(events: list[dict[str, Any]]) -> None:
    logs = [r["time_log"] for r in events if r["time_log"] is not None]
    for log in logs:
        assert log["ended_at"] > log["started_at"]
        assert log["duration_seconds"] == (log["ended_at"] - log["started_at"]).total_seconds()
        assert log["duration_seconds"] > 0
    assert {log["is_billable"] for log in logs} == {True, False}


def test_time_logs_start_in_local_working_hours(
    events: list[dict[str, Any]], user_zones: dict[int, ZoneInfo]
) -> None:
    entries = [r for r in events if r["event_type"] in ("timer_stopped", "time_logged")]
    weekday_starts = weekend_starts = 0
    for record in entries:
        zone = user_zones[record["user_id"]]
        local_start = record["time_log"]["started_at"].astimezone(zone)
        local_end = record["time_log"]["ended_at"].astimezone(zone)
        assert 8 <= local_start.hour < 19
        assert local_end.date() == local_start.date()  # nobody works through the night
        assert local_end.time() <= datetime.time(19)
        if local_start.weekday() >= 5:
            weekend_starts += 1
        else:
            weekday_starts += 1
    # Two weekends vs ten weekdays: a weekend day sees well under a third of a weekday's work.
    assert weekend_starts / 4 < (weekday_starts / 10) / 3


def test_timers_pair_up_and_entries_start_pending(events: list[dict[str, Any]]) -> None:
    running: dict[int, tuple[int, datetime.datetime]] = {}
    for record in events:
        user_id = record["user_id"]
        if record["event_type"] == "timer_started":
            assert user_id not in running  # one timer per person
            running[user_id] = (record["task_id"], record["event_timestamp"])
        elif record["event_type"] == "timer_stopped":
            task_id, started = running.pop(user_id)
            assert record["task_id"] == task_id
            assert record["time_log"]["started_at"] == started.replace(microsecond=0)
            assert record["time_log"]["ended_at"] <= record["event_timestamp"]
        if record["event_type"] in ("timer_stopped", "time_logged"):
            assert record["time_log"]["approval_status"] == "pending"
    assert not running  # every timer started inside the history also stops inside it


def test_time_entries_are_decided_once_by_a_manager(events: list[dict[str, Any]]) -> None:
    roles: dict[int, str] = {}
    logged: dict[int, dict[str, Any]] = {}
    decided: set[int] = set()
    for record in events:
        if record["user_state"] is not None:
            roles[record["user_state"]["user_id"]] = record["user_state"]["role"]
        log = record["time_log"]
        if record["event_type"] in ("timer_stopped", "time_logged"):
            logged[log["time_log_id"]] = log
        elif record["event_type"] in ("time_entry_approved", "time_entry_rejected"):
            original = logged[log["time_log_id"]]
            assert roles[record["user_id"]] in ("owner", "admin")
            assert log["time_log_id"] not in decided
            expected = "approved" if record["event_type"] == "time_entry_approved" else "rejected"
            assert log == {**original, "approval_status": expected}
            decided.add(log["time_log_id"])
    assert decided


# --- deliveries --------------------------------------------------------------------------------


def test_deliveries_are_sorted_and_never_early(fortnight: list[Delivery]) -> None:
    delivered = [d.delivered_at for d in fortnight]
    assert delivered == sorted(delivered)
    for delivery in fortnight:
        assert delivery.delivered_at.utcoffset() == datetime.timedelta(0)
        assert delivery.delivered_at >= delivery.record["event_timestamp"]


def test_late_deliveries_are_late_and_at_the_configured_rate() -> None:
    config = SimulationConfig(
        seed=3, companies=8, days=7, start_date=START, late_rate=0.2, max_late_days=2
    )
    deliveries = list(simulate_history(config))
    hour, limit = datetime.timedelta(hours=1), datetime.timedelta(days=2)
    late = [d for d in deliveries if d.is_late]
    for delivery in deliveries:
        lag = delivery.delivered_at - delivery.record["event_timestamp"]
        if delivery.is_late:
            assert hour <= lag <= limit
        else:
            assert lag <= datetime.timedelta(seconds=5)  # a few seconds through the producer
    assert len(deliveries) > 5_000
    assert len(late) / len(deliveries) == pytest.approx(0.2, abs=0.02)


def test_duplicates_repeat_the_original_exactly(fortnight: list[Delivery]) -> None:
    duplicates = [d for d in fortnight if d.is_duplicate]
    per_id = Counter(d.record["event_id"] for d in fortnight)
    assert len(duplicates) == sum(count - 1 for count in per_id.values())
    assert len(duplicates) / (len(fortnight) - len(duplicates)) == pytest.approx(0.03, abs=0.01)
    originals = {d.record["event_id"]: d for d in fortnight if not d.is_duplicate}
    for duplicate in duplicates:
        original = originals[duplicate.record["event_id"]]
        assert duplicate.record == original.record
        assert duplicate.is_late == original.is_late
        assert original.delivered_at < duplicate.delivered_at


def test_no_duplicates_or_late_events_by_default() -> None:
    deliveries = list(simulate_history(SimulationConfig(seed=5, days=1, start_date=START)))
    assert not any(d.is_late or d.is_duplicate for d in deliveries)


# --- live stream -------------------------------------------------------------------------------


def _take_live(config: SimulationConfig, count: int) -> list[Delivery]:
    return list(itertools.islice(iter_live(config, rate_per_second=50.0), count))


def test_live_stream_is_fresh_valid_and_seeded() -> None:
    config = SimulationConfig(seed=9, companies=2, users_per_company=6)
    before = datetime.datetime.now(UTC)
    first = _take_live(config, 800)
    after = datetime.datetime.now(UTC)
    schema = fastavro.parse_schema(json.loads(SCHEMA_PATH.read_text()))
    for delivery in first:
        fastavro.schemaless_writer(io.BytesIO(), schema, delivery.record)
        assert before <= delivery.record["event_timestamp"] <= delivery.delivered_at <= after
    assert [d.delivered_at for d in first] == sorted(d.delivered_at for d in first)
    types = {d.record["event_type"] for d in first}
    assert {"user_registered", "project_created", "task_created", "time_logged"} <= types
    logs = [d.record["time_log"] for d in first if d.record["time_log"] is not None]
    assert all(log["ended_at"] > log["started_at"] for log in logs)
    second = _take_live(config, 800)
    # Same seed, same content: only the clock differs between runs.
    assert [(d.record["event_id"], d.record["event_type"]) for d in first] == [
        (d.record["event_id"], d.record["event_type"]) for d in second
    ]


def test_live_stream_holds_back_late_and_duplicate_deliveries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A clock that jumps a minute per reading lets held-back events come due within the test.
    readings = itertools.count()
    monkeypatch.setattr(simulator, "_now_ns", lambda: (1_700_000_000 + 60 * next(readings)) * 10**9)
    config = SimulationConfig(seed=4, late_rate=0.2, duplicate_rate=0.2, max_late_days=1)
    deliveries = list(itertools.islice(iter_live(config, rate_per_second=1.0), 3_000))
    assert [d.delivered_at for d in deliveries] == sorted(d.delivered_at for d in deliveries)
    first_seen: dict[str, datetime.datetime] = {}
    for delivery in deliveries:
        lag = delivery.delivered_at - delivery.record["event_timestamp"]
        # late ones are held one to five minutes of wall time (bounded memory)
        assert lag >= (datetime.timedelta(minutes=1) if delivery.is_late else datetime.timedelta(0))
        if delivery.is_duplicate:
            assert first_seen[delivery.record["event_id"]] < delivery.delivered_at
        else:
            first_seen[delivery.record["event_id"]] = delivery.delivered_at
    assert any(d.is_late for d in deliveries)
    assert any(d.is_duplicate for d in deliveries)


def test_live_project_deadlines_stay_within_a_year(monkeypatch: pytest.MonkeyPatch) -> None:
    # Live mode packs months of project edits into minutes: slipped deadlines must not
    # drift decades ahead (past the marts' calendar).
    readings = itertools.count()
    monkeypatch.setattr(simulator, "_now_ns", lambda: (1_700_000_000 + next(readings)) * 10**9)
    config = SimulationConfig(seed=8, companies=1, users_per_company=6, projects_per_company=1)
    deliveries = list(itertools.islice(iter_live(config, rate_per_second=2_000.0), 40_000))
    updates = [d for d in deliveries if d.record["event_type"] == "project_updated"]
    assert len(updates) > 100
    latest = max(d.record["project_state"]["end_date"] for d in updates)
    assert latest <= deliveries[-1].delivered_at.date() + datetime.timedelta(days=365)


def test_live_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_per_second"):
        next(iter_live(SimulationConfig(), rate_per_second=0))
