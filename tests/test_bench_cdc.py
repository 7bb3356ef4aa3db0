"""bench/cdc.py's pure parts: the change plan, matching lake rows to commits, the percentiles,
the throughput and the memory peak (fast: no database, broker or Spark)."""

from __future__ import annotations

import argparse
import statistics

import pytest

from bench.cdc import (
    BENCH,
    CONNECT,
    INSERT_TASK,
    INSERT_TIME_LOG,
    LANDED,
    MACHINE,
    MAPPED,
    MARIADB,
    OTHERS,
    ROLES,
    SENT,
    STREAM,
    TARGET_RSS_MIB,
    UPDATE_STATUS,
    Change,
    Latency,
    Outcome,
    RssSample,
    batch_timings,
    batches_in,
    bench_rows,
    change_plan,
    cpu_by_phase,
    figures_of,
    in_commits,
    latency_of,
    parse_arguments,
    percentile,
    rss_peak,
    stages_of,
    throughput_of,
)
from bench.results import figure_problems
from bench.run_all import steps_for
from bench.soak import BROKER, STREAM_JVM

MIB = 1024**2


def test_the_plan_gives_each_task_its_insert_time_log_and_status_update_in_order() -> None:
    plan = change_plan(100, 7)
    assert [(c.kind, c.task_id) for c in plan] == [
        (INSERT_TASK, 100),
        (INSERT_TIME_LOG, 100),
        (UPDATE_STATUS, 100),
        (INSERT_TASK, 101),
        (INSERT_TIME_LOG, 101),
        (UPDATE_STATUS, 101),
        (INSERT_TASK, 102),
    ]
    assert [c.key for c in plan[:3]] == [
        ("task_created", 100),
        ("time_logged", 100),
        ("task_status_changed", 100),
    ]
    assert len({c.key for c in change_plan(0, 3000)}) == 3000  # one lake event per change


def test_commits_keep_the_plan_order_and_size() -> None:
    plan = change_plan(0, 10)
    commits = in_commits(plan, 4)
    assert [len(commit) for commit in commits] == [4, 4, 2]
    assert [change for commit in commits for change in commit] == plan
    assert in_commits(plan, 1) == [[change] for change in plan]


def test_bench_rows_are_the_bench_task_rows_only_with_their_timestamps() -> None:
    event_types = ["task_created", "time_logged", "project_created", None, "task_created"]
    task_ids = [500, 501, None, 502, 7]
    sent = [1.0, 2.0, 3.0, 4.0, 5.0]
    mapped = [1.5, None, 3.5, 4.5, 5.5]
    assert bench_rows(event_types, task_ids, sent, mapped, lowest_task_id=500) == [
        (("task_created", 500), (1.0, 1.5)),
        (("time_logged", 501), (2.0, None)),
    ]


def test_percentile_interpolates_as_statistics_quantiles_inclusive() -> None:
    values = sorted([0.4, 1.9, 0.7, 3.2, 1.1, 0.9, 2.5, 0.6, 1.4, 0.8, 5.0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    assert percentile(values, 0.95) == pytest.approx(cuts[94])
    assert percentile(values, 0.50) == pytest.approx(statistics.median(values))
    assert percentile([1.0, 2.0], 0.5) == 1.5
    assert percentile([3.0], 0.95) == 3.0
    assert (percentile(values, 0.0), percentile(values, 1.0)) == (0.4, 5.0)
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_latency_is_visible_minus_commit_per_change_and_counts_the_missing() -> None:
    committed = {("task_created", n): 100.0 + n for n in range(100)}
    # change n visible n/100 s after its commit; the last two never
    visible = {key: at + key[1] / 100 for key, at in committed.items() if key[1] < 98}
    latency = latency_of(committed, visible)
    assert (latency.count, latency.missing) == (100, 2)
    assert latency.p50 == pytest.approx(0.485)
    assert latency.p95 == pytest.approx(0.9215)
    assert latency.maximum == pytest.approx(0.97)
    assert latency_of(committed, {}) == Latency(100, 100, None, None, None, None)


def test_stages_split_each_latency_by_the_lake_rows_timestamps() -> None:
    committed = {("task_created", n): 10.0 * n for n in range(5)}
    # 0.2 s to Kafka, 1 s to the batch, 0.3 s to the file; the last row has no stamps
    stamps = {key: (at + 0.2, at + 1.2) for key, at in committed.items()}
    stamps[("task_created", 4)] = (None, None)
    visible = {key: at + 1.5 for key, at in committed.items()}
    stages = stages_of(committed, visible, stamps)
    assert list(stages) == [SENT, MAPPED, LANDED]
    assert stages[SENT] == pytest.approx((0.2, 0.2))
    assert stages[MAPPED] == pytest.approx((1.0, 1.0))
    assert stages[LANDED] == pytest.approx((0.3, 0.3))
    latency = latency_of(committed, visible, stamps)
    assert latency.p95 == pytest.approx(1.5)
    assert latency.stages == stages
    assert stages_of(committed, {}, stamps) == {}


def test_throughput_runs_from_the_first_transaction_to_the_last_visible_event() -> None:
    keys = [change.key for change in change_plan(0, 1000)]
    visible = {key: 1000.0 + n / 100 for n, key in enumerate(keys)}  # last at 1009.99
    result = throughput_of(1000.0, 1002.0, keys, visible, topics_at=1005.0)
    assert result.writer_rate == pytest.approx(500)
    assert result.pipeline_seconds == pytest.approx(9.99)
    assert result.pipeline_rate == pytest.approx(1000 / 9.99)
    assert (result.topics_seconds, result.missing) == (5.0, 0)
    partial = throughput_of(1000.0, 1002.0, keys, dict(list(visible.items())[:-1]))
    assert (partial.pipeline_rate, partial.missing, partial.topics_seconds) == (None, 1, None)


def test_the_rss_peak_is_the_largest_sum_of_one_sample_not_the_sum_of_maxima() -> None:
    samples = [
        RssSample(0.0, "start-up", {BROKER: 400 * MIB, MARIADB: None}),
        RssSample(
            1.0, "throughput", {BROKER: 450 * MIB, MARIADB: 200 * MIB, STREAM_JVM: 900 * MIB}
        ),
        RssSample(2.0, "latency", {BROKER: 500 * MIB, MARIADB: 150 * MIB, STREAM_JVM: 800 * MIB}),
    ]
    peak = rss_peak(samples)
    assert peak is not None
    assert (peak.total, peak.phase) == (1550 * MIB, "throughput")
    assert peak.role_max[BROKER] == 500 * MIB
    assert peak.role_max[CONNECT] == 0  # never sampled
    assert set(peak.role_max) == set(ROLES)
    assert rss_peak([]) is None


def test_cpu_by_phase_is_cores_per_role_and_the_rest_of_the_machine() -> None:
    def sample(elapsed: float, phase: str, stream: float, machine: float) -> RssSample:
        cpu = {BROKER: elapsed * 0.1, STREAM: stream, BENCH: elapsed * 0.2, MACHINE: machine}
        return RssSample(elapsed, phase, {}, cpu | {CONNECT: None})

    samples = [
        sample(0.0, "throughput", 0.0, 100.0),
        sample(10.0, "throughput", 12.0, 118.0),  # 1.8 cores busy: 1.2 + 0.1 + 0.2 + 0.3 others
        sample(11.0, "latency", 12.5, 119.0),
        sample(21.0, "latency", 20.5, 129.0),  # 1 core busy, 1.1 accounted: others 0, not -0.1
        sample(22.0, "stopping", 21.0, 130.0),  # one sample: no interval
    ]
    shares = cpu_by_phase(samples)
    assert list(shares) == ["throughput", "latency"]
    assert shares["throughput"] == pytest.approx(
        {BROKER: 0.1, STREAM: 1.2, BENCH: 0.2, OTHERS: 0.3}
    )
    assert shares["latency"][STREAM] == pytest.approx(0.8)
    assert shares["latency"][OTHERS] == 0.0
    assert CONNECT not in shares["latency"]  # not running: no share rather than a wrong one


def test_batch_timings_split_each_batch_at_its_ingested_at_stamp() -> None:
    metrics = [
        {"batch_id": 1, "started_at": 110.0, "finished_at": 114.0, "rows_landed": 600},
        {"batch_id": 0, "started_at": 100.0, "finished_at": 103.0, "rows_landed": 300},
        {"batch_id": 2, "started_at": 120.0, "finished_at": 121.0, "rows_landed": None},
    ]
    # batch 0 stamped 2 s in (after its lookups), batch 1 2.5 s in; batch 2 landed nothing
    timings = batch_timings(metrics, [102.0, 112.5, 102.0, 112.5])
    assert [(t.batch_id, t.seconds, t.rows, t.lookups_seconds) for t in timings] == [
        (0, 3.0, 300, 2.0),
        (1, 4.0, 600, 2.5),
        (2, 1.0, 0, None),
    ]
    summary = batches_in(timings, (100.0, 115.0))
    assert summary is not None
    assert (summary.count, summary.rows_p50, summary.seconds_p50, summary.seconds_max) == (
        2,
        450.0,
        3.5,
        4.0,
    )
    assert (summary.lookups_p50, summary.lookups_max) == (2.25, 2.5)
    assert batches_in(timings, (200.0, 300.0)) is None


def test_figures_are_well_formed_measured_or_not() -> None:
    args: argparse.Namespace = parse_arguments(["--quick"])
    assert (args.changes, args.latency_seconds, args.rate) == (6_000, 12.0, 500.0)
    keys = [change.key for change in change_plan(0, 600)]
    measured = Outcome(
        throughput=throughput_of(0.0, 1.0, keys, dict.fromkeys(keys, 4.0), topics_at=2.0),
        latency=latency_of(dict.fromkeys(keys, 0.0), dict.fromkeys(keys, 1.5)),
        latency_rate=499.0,
        peak=rss_peak([RssSample(0.0, "latency", {BROKER: 3 * 1024 * MIB})]),
    )
    figures = {figure["name"]: figure for figure in figures_of(args, measured)}
    assert set(figures) == {"cdc.throughput", "cdc.latency_p95", "cdc.latency_p50", "cdc.peak_rss"}
    assert all(not figure_problems(figure) for figure in figures.values())
    assert figures["cdc.throughput"]["value"] == 150.0
    assert figures["cdc.throughput"]["reference_value"] == 600.0
    assert figures["cdc.latency_p95"]["value"] == 1.5
    rss = figures["cdc.peak_rss"]
    assert (rss["value"], rss["target"], rss["met"]) == (3072.0, f"<= {TARGET_RSS_MIB} MiB", True)
    nothing = figures_of(args, Outcome(failures=["the stream did not start"]))
    assert [figure["value"] for figure in nothing] == [None, None, None, None]
    assert all(not figure_problems(figure) for figure in nothing)


def test_a_change_key_is_its_event_type_and_task() -> None:
    assert Change(UPDATE_STATUS, 9).key == ("task_status_changed", 9)


def test_run_all_runs_the_bench_in_full_runs_only() -> None:
    assert "cdc" in [step.name for step in steps_for(quick=False, soak=False)]
    assert "cdc" not in [step.name for step in steps_for(quick=True, soak=True)]
    assert [step.name for step in steps_for(quick=True, soak=False)] == [
        "producer",
        "spark_landing",
        "dbt_scale",
        "dag_parse",
    ]
