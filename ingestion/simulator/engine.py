"""The simulation engine: a company's setup, its agenda, and one unit of live activity.

How it works. Each company keeps an agenda (a heap) of planned actions: one working session per
user and local working day, task creations per project, timers to stop. The agenda runs in time
order and every action reads and changes the company's state at the moment it happens, so the
causal rules (members act on their projects, nothing touches a deleted task, a disabled user is
gone) hold by construction rather than by later repair. A company's clock only moves forward,
so cutting the history at its end can drop an effect but never keeps one without its cause.

``Simulator`` adds setup, dispatch and the live step; the actions live in the mixins it is
assembled from (see ``core``). The drivers decide *when* to call it.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
from collections.abc import Callable
from typing import Any

from ingestion.simulator.clock import to_dt
from ingestion.simulator.config import SimulationConfig
from ingestion.simulator.management import ManagementActions
from ingestion.simulator.payloads import project_state, user_state
from ingestion.simulator.planning import HistoryPlanning
from ingestion.simulator.state import Company, Project, User
from ingestion.simulator.tasks import TaskActions
from ingestion.simulator.timekeeping import TimeActions
from ingestion.simulator.tuning import ACTION_WEIGHTS, LIVE_MANAGER_ACTIONS, LIVE_RELOGIN_SHARE

# A work slot signature shared by every ``_act_*``: (company, actor, session window) -> acted?
Action = Callable[[Company, User, tuple[int, int] | None], bool]


def _cumulative(weights: dict[str, float]) -> tuple[tuple[str, ...], list[float]]:
    # Cumulative weights let ``rng.choices`` skip re-summing the table on every work slot.
    return tuple(weights), list(itertools.accumulate(weights.values()))


class Simulator(HistoryPlanning, TaskActions, TimeActions, ManagementActions):
    """Companies, their state and every action; the drivers only decide *when* to act.

    History mode plans actions on a per-company time agenda. Live mode reads the wall clock and
    keys its (global) agenda by step count, so its content never depends on how fast the caller
    consumes it.
    """

    def __init__(
        self,
        config: SimulationConfig,
        horizon: tuple[int, int],
        *,
        live_rate: float | None = None,
    ) -> None:
        super().__init__(config, horizon, live_rate=live_rate)
        extra = LIVE_MANAGER_ACTIONS if live_rate is not None else {}
        self._weights = {
            key: _cumulative({**weights, **(extra if key in ("owner", "admin") else {})})
            for key, weights in ACTION_WEIGHTS.items()
        }
        self._actions: dict[str, Action] = {
            "advance": self._act_advance,
            "modify": self._act_modify,
            "reopen": self._act_reopen,
            "assign": self._act_assign,
            "update": self._act_update,
            "comment": self._act_comment,
            "upload": self._act_upload,
            "timer": self._act_timer,
            "log_time": self._act_log_time,
            "move": self._act_move,
            "delete": self._act_delete,
            "approve": self._act_approve,
            "milestone": self._act_milestone,
            "project_update": self._act_project_update,
            "member_add": self._act_member_add,
            "member_remove": self._act_member_remove,
            "role_change": self._act_role_change,
            "invite": self._act_invite,
            "disable": self._act_disable,
            "archive": self._act_archive,
        }
        # Casting makes the RNG's first draws: anything drawing before it would change every seed.
        self.companies = [self._build_company() for _ in range(config.companies)]

    # --- setup: the owner signs up and brings the team -----------------------------------------

    def setup(self, company: Company, planned: int) -> None:
        """Register the owner, invite the initial team, create projects with a backlog."""
        rng = self.rng
        self._at(company, planned)
        owner = company.owner
        self._join(company, owner, owner, "user_registered")
        for user in self._initial_users(company)[1:]:
            joined_managers = [u for u in company.users if u.is_manager and u.joined]
            inviter = owner if rng.random() < 0.7 else rng.choice(joined_managers)
            self._later(company, 10, 90)
            self._join(company, user, inviter, "user_invited")
        for project in company.projects:
            self._later(company, 30, 180)
            self._create_project(company, project)

    def _create_project(self, company: Company, project: Project) -> None:
        rng = self.rng
        creator = project.creator
        today = to_dt(company.clock).date()
        project.created = True
        project.start_date = today
        project.end_date = today + datetime.timedelta(days=rng.randint(30, 180))
        project.members[creator.user_id] = creator
        creator.projects[project.project_id] = project
        self._emit(
            company, "project_created", creator, project, project_state=project_state(project)
        )
        self._later(company, 2, 20)
        self._emit(
            company, "project_member_added", creator, project, user_state=user_state(creator)
        )
        joining = [company.owner] if creator is not company.owner else []
        joining += [u for u in project.planned_members if u.joined and u.active]
        for user in joining:
            self._later(company, 3, 30)
            self._add_member(company, project, user, creator)
        self._later(company, 20, 120)
        self._create_milestone(company, creator, project)
        for _ in range(rng.randint(3, 8)):
            self._later(company, 20, 150)
            self._create_task(company, creator, project)

    # --- dispatch ------------------------------------------------------------------------------

    def run_until(self, company: Company, end: int) -> None:
        """Carry out every planned action due before `end`, in time order."""
        agenda = company.agenda
        while agenda and agenda[0][0] < end:
            due, _, kind, user, window, target = heapq.heappop(agenda)
            self._handle(company, kind, user, due, window, target)

    def _handle(
        self,
        company: Company,
        kind: str,
        user: User,
        due: int,
        window: tuple[int, int] | None,
        target: Any,
    ) -> None:
        if kind == "setup":
            self.setup(company, due)
        elif kind == "timer_stop":
            self._stop_timer(company, user, due, target)
        elif user.joined and user.active:
            self._at(company, due)
            self._ensure_session(company, user, window)
            if kind == "create":
                if target.is_live and user.user_id in target.members:
                    self._create_task(company, user, target)
            else:
                self._work(company, user, window)

    def _ensure_session(self, company: Company, user: User, window: tuple[int, int] | None) -> None:
        """Log in at the first action of each working session."""
        session = window[0] if window is not None else 0
        if user.session != session:
            user.session = session
            self._emit(company, "user_logged_in", user, user_state=user_state(user))
            self._later(company, 5, 90)

    # --- one work slot -------------------------------------------------------------------------

    def _work(self, company: Company, user: User, window: tuple[int, int] | None) -> None:
        if user.is_manager and self._do_chore(company, user):
            return
        key = "external" if user.user_type == "external" else user.role
        names, cumulative = self._weights[key]
        action = self.rng.choices(names, cum_weights=cumulative)[0]
        if not self._actions[action](company, user, window):
            self._act_comment(company, user, window)

    def _do_chore(self, company: Company, actor: User) -> bool:
        for chore in company.chores:
            if chore.due_us > company.clock:
                return False
            done = False
            if chore.kind == "invite":
                done = self._invite(company, actor, chore.target)
            elif chore.kind == "disable":
                done = self._disable(company, actor, chore.target)
            elif chore.kind == "archive":
                done = self._archive(company, actor, chore.target)
            if done:
                company.chores.remove(chore)
                return True
        return False

    # --- live stepping -------------------------------------------------------------------------

    def live_step(self) -> None:
        """One unit of live activity: due timer stops, then a login, task creation or action."""
        rng = self.rng
        self.step += 1
        agenda = self._live_agenda
        while agenda and agenda[0][0] <= self.step:
            due, _, kind, user, window, target, company = heapq.heappop(agenda)
            self._handle(company, kind, user, due, window, target)
        company = rng.choice(self.companies)
        people = [u for u in company.users if u.joined and u.active]
        user = rng.choices(people, weights=[u.activity for u in people])[0]
        if rng.random() < LIVE_RELOGIN_SHARE:
            user.session = -1  # a new session: the next action logs in again
        create_share = min(0.3, 0.02 * self.config.tasks_per_project_per_day)
        projects = self._projects_of(user)
        if rng.random() < create_share and projects:
            self._handle(company, "create", user, 0, None, rng.choice(projects))
        else:
            self._handle(company, "work", user, 0, None, None)
