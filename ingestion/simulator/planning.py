"""History mode's calendar: who works when, and which actions land on a company's agenda.

Sessions are drawn per user and *local* date, then queued by the UTC day they start on, so a
user in Sydney and one in New York both keep office hours in their own time zone.
"""

from __future__ import annotations

import datetime
import math
import random

from ingestion.simulator.clock import DAY, HOUR, local_us, to_dt
from ingestion.simulator.core import SimulatorCore
from ingestion.simulator.state import Company, Project, User
from ingestion.simulator.tuning import EARLIEST_START_MIN, LATEST_END_MIN


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's sampler: exact for the small means used here and needs only rng.random()."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class HistoryPlanning(SimulatorCore):
    """Working sessions and task creations planned day by day onto each company's agenda."""

    def _workday(self, user: User, day: datetime.date) -> tuple[int, int, int] | None:
        """The user's session on a local date (drawn once, then remembered) or None: day off."""
        if day in user.workdays:
            return user.workdays[day]
        weekend = day.weekday() >= 5
        works = (0.2 if weekend else 0.93) * (0.6 if user.user_type == "external" else 1.0)
        session = self._draw_session(user, day) if self.rng.random() < works else None
        user.workdays[day] = session
        return session

    def _draw_session(self, user: User, day: datetime.date) -> tuple[int, int, int]:
        rng = self.rng
        weekend = day.weekday() >= 5
        start = max(user.shift_start_min + rng.randint(-15, 15), EARLIEST_START_MIN)
        length = user.shift_len_min + rng.randint(-20, 20)
        if weekend:
            length = length * 2 // 5  # a quick look at the weekend, not a full day
        end = min(start + length, LATEST_END_MIN)
        mean = user.activity * (0.4 if weekend else 1.0)
        actions = max(1, round(rng.gauss(mean, mean / 4)))
        return local_us(user.tz, day, start), local_us(user.tz, day, end), actions

    def schedule_setups(self) -> None:
        for company in self.companies:
            self._push(company, self._setup_time(company), "setup", company.owner)

    def _setup_time(self, company: Company) -> int:
        """The owner's first session start inside the first day: they sign up at work."""
        owner = company.owner
        first_day = to_dt(self.h_start).date()
        for offset in (-1, 0, 1):
            day = first_day + datetime.timedelta(days=offset)
            start = local_us(owner.tz, day, owner.shift_start_min)
            if self.h_start <= start < self.h_start + DAY:
                session = self._workday(owner, day) or self._draw_session(owner, day)
                owner.workdays[day] = session  # sign-up day is a working day, weekend or not
                return min(max(session[0], self.h_start), self.h_start + DAY - HOUR)
        return self.h_start + HOUR  # only reachable around DST jumps

    def plan_day(self, company: Company, day_index: int) -> None:
        """Queue the sessions starting on this UTC day and the day's task creations."""
        day_start = self.h_start + day_index * DAY
        day_end = day_start + DAY
        utc_day = to_dt(day_start).date()
        for user in company.users:
            for offset in (-1, 0, 1):
                session = self._workday(user, utc_day + datetime.timedelta(days=offset))
                if session is None:
                    continue
                start, end, _ = session
                straddles_start = day_index == 0 and start < day_start < end
                if day_start <= start < day_end or straddles_start:
                    self._plan_session(company, user, session)
        for project in company.projects:
            self._plan_creations(company, project, day_start, utc_day)

    def _plan_session(self, company: Company, user: User, session: tuple[int, int, int]) -> None:
        start, end, actions = session
        low = max(start, self.h_start)
        if low >= end:
            return
        window = (start, end)
        for _ in range(actions):
            self._push(company, self.rng.randrange(low, end), "work", user, window)

    def _plan_creations(
        self, company: Company, project: Project, day_start: int, utc_day: datetime.date
    ) -> None:
        if project.status != "active":
            return
        rng = self.rng
        candidates = list(project.members.values()) or [project.creator, *project.planned_members]
        for _ in range(_poisson(rng, self.config.tasks_per_project_per_day)):
            for _attempt in range(3):  # pick someone who actually works that day
                user = rng.choice(candidates)
                slot = self._slot_on_day(user, day_start, utc_day)
                if slot is not None:
                    self._push(company, slot[0], "create", user, slot[1], project)
                    break

    def _slot_on_day(
        self, user: User, day_start: int, utc_day: datetime.date
    ) -> tuple[int, tuple[int, int]] | None:
        """A random moment of the user's sessions that falls on this UTC day."""
        parts = []
        for offset in (-1, 0, 1):
            session = self._workday(user, utc_day + datetime.timedelta(days=offset))
            if session is None:
                continue
            low, high = max(session[0], day_start, self.h_start), min(session[1], day_start + DAY)
            if low < high:
                parts.append((low, high, session))
        if not parts:
            return None
        low, high, session = self.rng.choice(parts)
        return self.rng.randrange(low, high), (session[0], session[1])
