"""Entry points: a finished history, or an endless live stream, as producer deliveries.

Deliveries pass through a heap keyed by ``delivered_at``; a day's deliveries are released once
every company has been simulated past that day, which keeps memory to a few days of events
even for a million-event history.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from ingestion.simulator.clock import DAY, HOUR, MINUTE, SECOND, UTC, to_dt, to_us
from ingestion.simulator.config import SimulationConfig
from ingestion.simulator.engine import Simulator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One hand-off to Kafka; late and duplicate deliveries are what the pipeline must absorb."""

    record: dict[str, Any]  # an Avro-ready ActivityEvent dict
    delivered_at: datetime.datetime  # tz-aware UTC; when the app hands it to Kafka
    is_late: bool
    is_duplicate: bool


def _history_horizon(config: SimulationConfig) -> tuple[int, int]:
    start_date = config.start_date
    if start_date is None:
        # The one wall-clock read of history mode: a date, so one day's runs stay identical.
        start_date = datetime.datetime.now(UTC).date() - datetime.timedelta(days=config.days)
    start = to_us(datetime.datetime.combine(start_date, datetime.time(), tzinfo=UTC))
    return start, start + config.days * DAY


def _deliveries(
    rng: random.Random, config: SimulationConfig, timestamp: int, record: dict[str, Any]
) -> list[tuple[int, Delivery]]:
    """How the producer hands one event over: usually seconds later, sometimes late or twice."""
    late = rng.random() < config.late_rate
    if late:
        delay = rng.randint(HOUR, config.max_late_days * DAY)
    else:
        delay = rng.randint(SECOND // 5, 5 * SECOND)
    delivered = timestamp + delay
    out = [(delivered, Delivery(record, to_dt(delivered), late, False))]
    if rng.random() < config.duplicate_rate:
        again = delivered + rng.randint(SECOND, 120 * SECOND)  # a producer retry
        out.append((again, Delivery(dict(record), to_dt(again), late, True)))
    return out


def simulate_history(config: SimulationConfig) -> Iterator[Delivery]:
    """Deliveries sorted by delivered_at (stable order), deterministic per seed.

    Streams day by day, so a month of fifty companies never sits in memory at once; events
    happen inside [start_date, start_date + days) and may be delivered after it.
    """
    horizon = _history_horizon(config)
    simulator = Simulator(config, horizon)
    simulator.schedule_setups()
    pending: list[tuple[int, int, Delivery]] = []
    order = itertools.count()
    events = late = duplicates = 0
    for day_index in range(config.days):
        day_end = horizon[0] + (day_index + 1) * DAY
        for company in simulator.companies:
            simulator.plan_day(company, day_index)
            simulator.run_until(company, day_end)
        for timestamp, record in simulator.out:
            if timestamp >= horizon[1]:
                continue  # cut at the end; causes never sit after their effects, so this is safe
            first, *again = _deliveries(simulator.rng, config, timestamp, record)
            events, late, duplicates = events + 1, late + first[1].is_late, duplicates + len(again)
            for delivered, delivery in (first, *again):
                heapq.heappush(pending, (delivered, next(order), delivery))
        simulator.out.clear()
        # Everything simulated later happens on or after day_end, and delivered_at never
        # precedes event_timestamp, so deliveries before day_end are final.
        while pending and pending[0][0] < day_end:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]
    logger.info(
        "simulated %d events (%d late, %d duplicate deliveries) for %d companies over %d days",
        *(events, late, duplicates, config.companies, config.days),
    )


# How long the live stream holds a late delivery back (wall time, microseconds).
LIVE_LATENESS: Final = (MINUTE, 5 * MINUTE)


def iter_live(config: SimulationConfig, rate_per_second: float) -> Iterator[Delivery]:
    """An endless stream of fresh events stamped with the wall clock; the caller paces it.

    Content (who does what, ids) is deterministic per seed; timestamps are not. Working hours
    do not apply, since a demo runs whenever it runs. `rate_per_second` only scales how many
    steps a timer stays running, so timers last seconds to minutes at the caller's pace. Late
    and duplicate deliveries are held back and yielded once their delivered_at has passed.
    Late ones are held LIVE_LATENESS of wall time, not the history's hours to days: an endless
    stream holding days of events grows without bound (at 2,000 events/s and 2% late, about
    150 MB an hour), so its memory stays flat only with a short hold.
    """
    if rate_per_second <= 0:
        raise ValueError(f"rate_per_second must be > 0, got {rate_per_second}")
    simulator = Simulator(config, (0, 2**62), live_rate=rate_per_second)
    rng = simulator.rng
    held: list[tuple[int, int, dict[str, Any], bool, bool]] = []
    order = itertools.count()
    for company in simulator.companies:
        simulator.setup(company, 0)
    while True:
        # Fresh events go out first, then held-back ones stamped with the hand-off moment; both
        # are older than anything the next step creates, so delivered_at never goes back.
        for timestamp, record in simulator.out:
            late = rng.random() < config.late_rate
            if late:
                due = timestamp + rng.randint(*LIVE_LATENESS)
                heapq.heappush(held, (due, next(order), record, True, False))
            else:
                yield Delivery(record, to_dt(timestamp), False, False)
                due = timestamp
            if rng.random() < config.duplicate_rate:
                again = due + rng.randint(SECOND // 5, 5 * SECOND)
                heapq.heappush(held, (again, next(order), dict(record), late, True))
        simulator.out.clear()
        while held and held[0][0] <= simulator.wall():
            _, _, record, late, duplicate = heapq.heappop(held)
            yield Delivery(record, to_dt(simulator.wall()), late, duplicate)
        simulator.live_step()
