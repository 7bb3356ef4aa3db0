"""Fixtures of the failure tests: a continuous stream in this process, always stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pyspark.sql import SparkSession

from orangescrum.core.settings import Settings
from spark.stream import StreamTotals, run_stream
from tests.reliability.streaming import START_TIMEOUT, batches_started

QUERY_NAME = "events_raw_to_lake"


class RunningStream:
    """`run_stream(continuous)` on the session's SparkSession, in a thread of its own.

    The same code as `orangescrum stream --continuous`, without the ~20 s of a second JVM
    starting: the tests that kill the stream's process start it as a subprocess instead.
    """

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self.spark = spark
        self.settings = settings
        self.totals: StreamTotals | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.totals = run_stream(self.spark, self.settings, available_now=False)
        except BaseException as error:  # reported by the waits and by stop()
            self.error = error

    @property
    def stopped(self) -> bool:
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        active = [q for q in self.spark.streams.active if q.name == QUERY_NAME]
        return self._thread.is_alive() and bool(active)

    def wait_for_batch(self) -> None:
        """Until one more micro-batch than now has finished."""
        baseline = batches_started(self.settings)
        self.wait_until(lambda: batches_started(self.settings) > baseline, "no micro-batch")

    def wait_until(
        self, done: Callable[[], bool], what: str, timeout: float = START_TIMEOUT
    ) -> None:
        """Poll done() while the stream runs; fail naming `what` if it stops or times out."""
        deadline = time.monotonic() + timeout
        while not done():
            if not self._thread.is_alive():
                pytest.fail(f"the stream stopped: {self.error!r}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} within {timeout:.0f}s (stream alive: {self.alive})")
            time.sleep(0.5)

    def stop(self) -> StreamTotals:
        """Stop the query as Ctrl-C would; what the stream counted over its life."""
        for query in self.spark.streams.active:
            if query.name == QUERY_NAME:
                query.stop()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "the stream did not stop"
        if self.error is not None:
            raise self.error
        assert self.totals is not None
        return self.totals


@pytest.fixture
def live_stream(spark: SparkSession) -> Iterator[Callable[[Settings], RunningStream]]:
    """Factory: start a continuous stream (1 s trigger, small batches) on the given settings."""
    started: list[RunningStream] = []

    def start(settings: Settings) -> RunningStream:
        fast = settings.model_copy(update={"trigger_seconds": 1, "max_events_per_batch": 2_000})
        stream = RunningStream(spark, fast)
        started.append(stream)
        return stream

    yield start
    for stream in started:
        if not stream.stopped:
            stream.stop()
