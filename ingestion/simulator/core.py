"""What every part of the engine shares: the seeded RNG, id sequences, clocks and emitting.

The engine is one class assembled from mixins, one module per job (``cast``, ``planning``,
``tasks``, ``timekeeping``, ``management``, then ``engine`` on top). They all build on this
core, and each mixin inherits from exactly the mixins it calls, so a module's bases list its
real dependencies. They share one RNG on purpose: a history is reproducible only while every
draw happens in the same order, whichever module makes it.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from typing import Any

import ingestion.simulator as package
from ingestion.simulator.clock import SECOND, to_dt
from ingestion.simulator.config import SimulationConfig
from ingestion.simulator.payloads import client_of, task_state
from ingestion.simulator.state import Company, Project, Task, User


class SimulatorCore:
    """State shared by all mixins, the clock rules, the agenda and the record factory."""

    def __init__(
        self,
        config: SimulationConfig,
        horizon: tuple[int, int],
        *,
        live_rate: float | None = None,
    ) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.h_start, self.h_end = horizon
        self.live_rate = live_rate
        self.out: list[tuple[int, dict[str, Any]]] = []
        # Filled by the assembled engine: casting needs the ``Casting`` mixin, not just the core.
        self.companies: list[Company] = []
        # One sequence per entity kind across all companies: ids are globally unique per kind.
        kinds = ("company", "user", "project", "task", "time_log", "comment", "milestone", "file")
        self._ids = {kind: itertools.count(1) for kind in kinds}
        self._seq = itertools.count()
        self._wall_us = 0
        self._live_agenda: list[tuple[Any, ...]] = []
        self.step = 0

    # --- clock ---------------------------------------------------------------------------------

    def wall(self) -> int:
        """Wall-clock microseconds, forced strictly increasing so live events never tie."""
        # Looked up on the package at every reading: that is where tests replace the clock.
        self._wall_us = max(package._now_ns() // 1000, self._wall_us + 1)
        return self._wall_us

    def _at(self, company: Company, planned: int) -> None:
        """Move the company clock to a planned moment; never backwards, so order = time."""
        if self.live_rate is not None:
            company.clock = max(self.wall(), company.clock + 1)
        else:
            company.clock = max(planned, company.clock + SECOND)

    def _later(self, company: Company, low_s: int, high_s: int) -> None:
        """Advance for a follow-up event of the same action (a click or two later)."""
        gap = self.rng.randint(low_s * SECOND, high_s * SECOND)
        if self.live_rate is not None:
            company.clock = max(self.wall(), company.clock + 1)
        else:
            company.clock += gap

    def _push(
        self,
        company: Company,
        due: int,
        kind: str,
        user: User,
        window: tuple[int, int] | None = None,
        target: Any = None,
    ) -> None:
        item = (due, next(self._seq), kind, user, window, target)
        if self.live_rate is None:
            heapq.heappush(company.agenda, item)
        else:
            heapq.heappush(self._live_agenda, (*item, company))

    # --- records -------------------------------------------------------------------------------

    def _emit(
        self,
        company: Company,
        event_type: str,
        actor: User,
        project: Project | None = None,
        task: Task | None = None,
        **payloads: dict[str, Any] | None,
    ) -> None:
        event_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        record: dict[str, Any] = {
            "event_id": str(event_id),
            "event_type": event_type,
            "event_timestamp": to_dt(company.clock),
            "company_id": company.company_id,
            "user_id": actor.user_id,
            "project_id": project.project_id if project is not None else None,
            "task_id": task.task_id if task is not None else None,
            "client": client_of(event_type, event_id.int),
            "user_state": None,
            "project_state": None,
            "task_state": None,
            "time_log": None,
            "comment": None,
            "milestone": None,
            "attachment": None,
        }
        record.update(payloads)
        self.out.append((company.clock, record))

    def _emit_task(
        self,
        company: Company,
        event_type: str,
        actor: User,
        task: Task,
        **payloads: dict[str, Any] | None,
    ) -> None:
        state = task_state(task)
        self._emit(company, event_type, actor, task.project, task, task_state=state, **payloads)

    # --- picking what to act on ----------------------------------------------------------------

    def _projects_of(self, user: User) -> list[Project]:
        return [p for p in user.projects.values() if p.status == "active"]

    def _pick_task(
        self, user: User, *, closed: bool = False, statuses: tuple[str, ...] | None = None
    ) -> Task | None:
        """A task of one of the user's projects, preferring the user's own assignments."""
        projects = self._projects_of(user)
        if not projects:
            return None
        project = self.rng.choice(projects)
        pool = project.closed_tasks if closed else project.open_tasks
        sample = [t for t in pool.sample(self.rng, 3) if statuses is None or t.status in statuses]
        mine = [t for t in sample if t.assignee is user]
        return (mine or sample or [None])[0]

    def _active_members(self, project: Project, *, internal: bool = False) -> list[User]:
        return [
            u
            for u in project.members.values()
            if u.active and (not internal or u.user_type == "internal")
        ]
