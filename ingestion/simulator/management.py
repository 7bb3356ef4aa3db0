"""Managers' actions: memberships, milestones, project edits, roles, hiring, leaving, archiving.

Hiring needs a freshly cast user, hence ``Casting`` as the base rather than the bare core.
"""

from __future__ import annotations

import datetime

from ingestion.simulator.cast import Casting
from ingestion.simulator.clock import to_dt
from ingestion.simulator.payloads import project_state, user_state
from ingestion.simulator.state import Company, Milestone, Project, User

# How far ahead a project's planned end may lie (its first plan is 30-180 days out).
MAX_PLAN_DAYS = 365


class ManagementActions(Casting):
    """Team and project administration, also the planned chores (invite, disable, archive)."""

    def _join(self, company: Company, user: User, actor: User, event_type: str) -> None:
        user.joined, user.created_us = True, company.clock
        self._emit(company, event_type, actor, user_state=user_state(user))

    def _add_member(self, company: Company, project: Project, user: User, actor: User) -> None:
        project.members[user.user_id] = user
        user.projects[project.project_id] = project
        self._emit(company, "project_member_added", actor, project, user_state=user_state(user))

    def _create_milestone(self, company: Company, actor: User, project: Project) -> None:
        rng = self.rng
        count = len(project.milestones)
        title = f"Sprint {count + 1}" if rng.random() < 0.7 else f"Release 1.{count}"
        milestone = Milestone(
            milestone_id=next(self._ids["milestone"]),
            title=title,
            due_date=to_dt(company.clock).date() + datetime.timedelta(days=rng.randint(7, 30)),
        )
        project.milestones.append(milestone)
        payload = {
            "milestone_id": milestone.milestone_id,
            "title": milestone.title,
            "due_date": milestone.due_date,
        }
        self._emit(company, "milestone_created", actor, project, milestone=payload)

    def _act_milestone(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        projects = self._projects_of(user)
        if not projects:
            return False
        self._create_milestone(company, user, self.rng.choice(projects))
        return True

    def _act_project_update(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        rng = self.rng
        projects = self._projects_of(user)
        if not projects:
            return False
        project = rng.choice(projects)
        if rng.random() < 0.5:
            project.estimated_hours += float(rng.randrange(-100, 300, 50) or 50)
            project.estimated_hours = max(project.estimated_hours, 50.0)
        elif project.end_date is not None:
            # The deadline slips, but stays within a year: live mode runs months of updates
            # an hour, and unbounded slips put end dates decades out (past any calendar).
            horizon = to_dt(company.clock).date() + datetime.timedelta(days=MAX_PLAN_DAYS)
            slipped = project.end_date + datetime.timedelta(days=rng.randint(7, 30))
            project.end_date = min(slipped, horizon)
        self._emit(company, "project_updated", user, project, project_state=project_state(project))
        return True

    def _act_member_add(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        projects = self._projects_of(user)
        if not projects:
            return False
        project = self.rng.choice(projects)
        outsiders = [
            u for u in company.users if u.joined and u.active and u.user_id not in project.members
        ]
        if not outsiders:
            return False
        self._add_member(company, project, self.rng.choice(outsiders), user)
        return True

    def _act_member_remove(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        projects = self._projects_of(user)
        if not projects:
            return False
        project = self.rng.choice(projects)
        if len(project.members) <= 3:
            return False  # keep a working team
        protected = (company.owner, project.creator, user)
        # Nobody loses their last active project (they would idle) or a project their timer
        # is running on (the stop would come from a non-member).
        candidates = [
            u
            for u in project.members.values()
            if u not in protected
            and len(self._projects_of(u)) > 1
            and (u.running is None or u.running.task.project is not project)
        ]
        if not candidates:
            return False
        member = self.rng.choice(candidates)
        del project.members[member.user_id]
        del member.projects[project.project_id]
        self._emit(company, "project_member_removed", user, project, user_state=user_state(member))
        return True

    def _act_role_change(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        staff = [
            u
            for u in company.users[1:]
            if u.joined and u.active and u.user_type == "internal" and u is not user
        ]
        if not staff:
            return False
        target = self.rng.choice(staff)
        target.role = "member" if target.role == "admin" else "admin"
        self._emit(company, "user_role_changed", user, user_state=user_state(target))
        return True

    def _invite(self, company: Company, actor: User, user: User) -> bool:
        if user.joined:
            return True
        projects = self._projects_of(actor)
        if not projects:
            return False  # leave it to a manager who can also put the newcomer on a project
        self._join(company, user, actor, "user_invited")
        wanted = 1 if user.user_type == "external" else self.rng.randint(1, 2)
        for project in self.rng.sample(projects, min(wanted, len(projects))):
            self._later(company, 5, 60)
            self._add_member(company, project, user, actor)
        return True

    def _disable(self, company: Company, actor: User, user: User) -> bool:
        if user is actor or user.running is not None or not user.joined:
            return False  # try again at a later slot, or through another manager
        if not user.active:
            return True
        user.active = False
        self._emit(company, "user_disabled", actor, user_state=user_state(user))
        return True

    def _archive(self, company: Company, actor: User, project: Project) -> bool:
        if project.status != "active":
            return True
        if not project.created or actor.user_id not in project.members:
            return False
        if any(
            u.running is not None and u.running.task.project is project
            for u in project.members.values()
        ):
            return False
        project.status = "archived"
        self._emit(
            company, "project_archived", actor, project, project_state=project_state(project)
        )
        return True

    def _act_invite(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        user_type = "external" if self.rng.random() < 0.2 else "internal"
        newcomer = self._new_user(company, "member", user_type)
        company.users.append(newcomer)
        return self._invite(company, user, newcomer)

    def _act_disable(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        active = [u for u in company.users[1:] if u.active and u.joined and u is not user]
        if len(active) < 3:
            return False  # a live tenant must not run out of people
        return self._disable(company, user, self.rng.choice(active))

    def _act_archive(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        live = [p for p in company.projects if p.status == "active"]
        if len(live) < 2:
            return False
        return self._archive(company, user, self.rng.choice(live))
