"""Seeded OrangeScrum activity simulator: a believable tenant history, or a live event stream.

The pipeline, its tests and the demo need input that behaves like the real app: people join
before they act, tasks walk OrangeScrum's status legend, time is logged in office hours of each
user's own time zone, and the producer sometimes delivers late or twice. Every random choice
comes from one ``random.Random(seed)``, so a history is reproducible bit for bit and a failing
pipeline test can be replayed.

Modules, by job: ``config`` (what to simulate), ``drivers`` (``simulate_history``,
``iter_live`` and their ``Delivery``), ``engine`` (dispatch, built on ``core`` and the action
mixins ``cast``, ``planning``, ``tasks``, ``timekeeping``, ``management``), ``state`` (the
mutable world), ``payloads`` (records from state), ``clock``, ``tuning`` and ``vocabulary``.
Import from the package; the modules are internal.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ingestion.simulator.config import SimulationConfig
from ingestion.simulator.drivers import Delivery, iter_live, simulate_history

__all__ = ["Delivery", "SimulationConfig", "iter_live", "simulate_history"]

# The live stream's clock. It lives on the package so tests can replace
# `ingestion.simulator._now_ns` to run hours of stream in a second; the engine reads it from
# here at every reading instead of binding it at import.
_now_ns: Callable[[], int] = time.time_ns
