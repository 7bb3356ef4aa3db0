"""Casting a company: its people, projects and planned chores, before anything happens.

Casting only draws and builds state; the events that bring the cast on stage (sign-up,
invitations, project creation) are emitted later by the engine's setup, at simulated time.
"""

from __future__ import annotations

import unicodedata
from zoneinfo import ZoneInfo

from ingestion.simulator.clock import DAY
from ingestion.simulator.core import SimulatorCore
from ingestion.simulator.state import Chore, Company, Project, User
from ingestion.simulator.tuning import ACTIVITY, SHIFT_LENGTHS_MIN, SHIFT_STARTS_MIN
from ingestion.simulator.vocabulary import (
    COMPANY_WORDS,
    FIRST_NAMES,
    LAST_NAMES,
    PROJECT_KINDS,
    PROJECT_WORDS,
    TIMEZONES,
)
from orangescrum.core.contract.events import PROJECT_TYPES


def _ascii(text: str) -> str:
    """Fold accents for email addresses (Müller -> muller); names keep theirs on purpose."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


class Casting(SimulatorCore):
    """Who works where: users with roles and shifts, projects with planned teams, chores."""

    def _build_company(self) -> Company:
        rng = self.rng
        company_id = next(self._ids["company"])
        company = Company(
            company_id=company_id,
            domain=f"{rng.choice(COMPANY_WORDS).lower()}{company_id}.example",
            hq_tz=rng.choice(TIMEZONES),
        )
        for role, user_type in self._roles(self.config.users_per_company):
            company.users.append(self._new_user(company, role, user_type))
        for _ in range(self.config.projects_per_company):
            company.projects.append(self._new_project(company))
        self._give_everyone_a_project(company)
        if self.live_rate is None:
            company.chores = self._plan_chores(company)
        return company

    def _roles(self, users: int) -> list[tuple[str, str]]:
        """One owner, about a quarter admins, and a few external clients among the members."""
        admins = max(1, users // 4) if users >= 3 else 0
        externals = max(1, users // 7) if users >= 4 else 0
        members = users - 1 - admins
        return (
            [("owner", "internal")]
            + [("admin", "internal")] * admins
            + [("member", "internal")] * (members - externals)
            + [("member", "external")] * externals
        )

    def _new_user(self, company: Company, role: str, user_type: str) -> User:
        rng = self.rng
        user_id = next(self._ids["user"])
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # Most staff sit at headquarters; clients and remote hires bring other time zones.
        stays_home = user_type == "internal" and rng.random() < 0.75
        tz_name = company.hq_tz if stays_home else rng.choice(TIMEZONES)
        domain = (
            company.domain if user_type == "internal" else f"client{company.company_id}.example"
        )
        activity_key = "external" if user_type == "external" else role
        return User(
            user_id=user_id,
            name=f"{first} {last}",
            email=_ascii(f"{first}.{last}.{user_id}@{domain}".lower()),
            role=role,
            user_type=user_type,
            tz_name=tz_name,
            tz=ZoneInfo(tz_name),
            shift_start_min=rng.choice(SHIFT_STARTS_MIN),
            shift_len_min=rng.choice(SHIFT_LENGTHS_MIN),
            activity=ACTIVITY[activity_key] * rng.uniform(0.7, 1.3),
        )

    def _new_project(self, company: Company) -> Project:
        rng = self.rng
        project_type = rng.choice(PROJECT_TYPES)
        word = rng.choice(PROJECT_WORDS)
        managers = [u for u in company.users if u.is_manager]
        creator = company.owner if rng.random() < 0.6 else rng.choice(managers)
        project_id = next(self._ids["project"])
        return Project(
            project_id=project_id,
            name=f"{word} {rng.choice(PROJECT_KINDS[project_type])}",
            short_name=f"{word[:3].upper()}{project_id}",
            project_type=project_type,
            creator=creator,
            planned_members=self._plan_members(company, creator),
            estimated_hours=float(rng.randrange(100, 2000, 50)),
        )

    def _plan_members(self, company: Company, creator: User) -> list[User]:
        """Staff join most projects; a client only joins the one project they commissioned."""
        rng = self.rng
        if len(company.users) < 2:
            return []
        internal_share = 0.6 if self.config.projects_per_company > 1 else 1.0
        chosen = []
        for user in company.users[1:]:
            if user is creator:
                continue
            share = internal_share if user.user_type == "internal" else 0.5
            if rng.random() < share:
                chosen.append(user)
        return chosen

    def _give_everyone_a_project(self, company: Company) -> None:
        """Nobody is hired to idle: a user left out by chance joins one random project."""
        for user in company.users[1:]:
            if not any(user is p.creator or user in p.planned_members for p in company.projects):
                self.rng.choice(company.projects).planned_members.append(user)

    def _plan_chores(self, company: Company) -> list[Chore]:
        """Late joiners, departures and end-of-life archiving, spread over the history."""
        rng, days = self.rng, self.config.days
        chores: list[Chore] = []
        others = company.users[1:]
        if days >= 3:
            members = [u for u in others if u.role == "member"]
            for user in self.rng.sample(members, min(len(members), len(others) // 7)):
                due = self.h_start + rng.randint(1, days - 1) * DAY
                chores.append(Chore(due, "invite", user))
        initial = [u for u in others if not any(c.target is u for c in chores)]
        if days >= 7 and len(company.users) >= 4:
            for user in rng.sample(initial, max(0, min(len(initial) - 2, max(1, days // 14)))):
                due = self.h_start + int(rng.uniform(0.4, 0.9) * days * DAY)
                chores.append(Chore(due, "disable", user))
        if days >= 7 and len(company.projects) >= 2:
            count = min(len(company.projects) - 1, max(1, days // 21))
            for project in rng.sample(company.projects, count):
                due = self.h_start + int(rng.uniform(0.8, 0.92) * days * DAY)
                chores.append(Chore(due, "archive", project))
        chores.sort(key=lambda chore: chore.due_us)
        return chores

    def _initial_users(self, company: Company) -> list[User]:
        late = {id(c.target) for c in company.chores if c.kind == "invite"}
        return [u for u in company.users if id(u) not in late]
