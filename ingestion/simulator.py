"""Seeded OrangeScrum activity simulator: a believable tenant history, or a live event stream.

The pipeline, its tests and the demo need input that behaves like the real app: people join
before they act, tasks walk OrangeScrum's status legend, time is logged in office hours of each
user's own time zone, and the producer sometimes delivers late or twice. Every random choice
comes from one ``random.Random(seed)``, so a history is reproducible bit for bit and a failing
pipeline test can be replayed.

How it works. Each company keeps an agenda (a heap) of planned actions: one working session per
user and local working day, task creations per project, timers to stop. The agenda runs in time
order and every action reads and changes the company's state at the moment it happens, so the
causal rules (members act on their projects, nothing touches a deleted task, a disabled user is
gone) hold by construction rather than by later repair. A company's clock only moves forward,
so cutting the history at its end can drop an effect but never keeps one without its cause.
Deliveries pass through a heap keyed by ``delivered_at``; a day's deliveries are released once
every company has been simulated past that day, which keeps memory to a few days of events
even for a million-event history.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import logging
import math
import random
import time
import unicodedata
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

from ingestion.events import PROJECT_TYPES, TASK_PRIORITIES, TASK_STATUS_LEGEND, TASK_TYPES

logger = logging.getLogger(__name__)

UTC: Final = datetime.UTC
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=UTC)
# Internal clocks are integer microseconds since the epoch: exact, cheap to compare, and the
# same resolution as Avro's timestamp-micros.
_SECOND: Final = 1_000_000
_MINUTE: Final = 60 * _SECOND
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR

# Working hours in minutes after local midnight. Shifts start 08:30-10:00 and never run past
# 18:50, so everything a user does lands inside 08:00-19:00 of their own time zone.
_EARLIEST_START_MIN: Final = 8 * 60 + 15
_LATEST_END_MIN: Final = 18 * 60 + 50
_SHIFT_STARTS_MIN: Final = (510, 540, 540, 570, 600)
_SHIFT_LENGTHS_MIN: Final = (480, 510, 540)

# A timer needs room to run before the session (or the history) ends; a stopped timer keeps
# this much distance from the end of the history so clock pushes cannot drop its stop event.
_MIN_TIMER: Final = 15 * _MINUTE
_HISTORY_END_MARGIN: Final = 10 * _MINUTE

# The status legend as a state machine: where a user may move a task from each status.
_STATUS_TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    "New": ("Opened",),
    "Opened": ("Start", "Modified"),
    "Start": ("Resolved", "Modified"),
    "Modified": ("Start",),
    "Resolved": ("Closed", "Opened", "Modified"),
    "Closed": ("Opened",),
}
_REOPEN_SHARE: Final = 0.15  # resolved work that bounces back from review
_REJECT_SHARE: Final = 0.15  # time entries a manager rejects
_BILLABLE_SHARE: Final = 0.7

# Actions per working day: owners and admins spend part of the day managing, clients mostly
# comment and upload.
_ACTIVITY: Final = {"owner": 26.0, "admin": 40.0, "member": 54.0, "external": 13.0}

_WORK_ACTIONS: Final = {
    "advance": 18.0,
    "modify": 2.5,
    "reopen": 1.0,
    "assign": 5.0,
    "update": 9.0,
    "comment": 18.0,
    "upload": 5.0,
    "timer": 9.0,
    "log_time": 8.0,
    "move": 0.4,
    "delete": 0.4,
}
_MANAGER_ACTIONS: Final = {
    "approve": 14.0,
    "milestone": 1.2,
    "project_update": 1.5,
    "member_add": 0.6,
    "member_remove": 0.3,
}
_ACTION_WEIGHTS: Final[dict[str, dict[str, float]]] = {
    "member": _WORK_ACTIONS,
    "external": {"advance": 5.0, "reopen": 3.0, "update": 8.0, "comment": 50.0, "upload": 25.0},
    "admin": {**_WORK_ACTIONS, **_MANAGER_ACTIONS},
    "owner": {**_WORK_ACTIONS, **_MANAGER_ACTIONS, "role_change": 1.5},
}
# A live stream has no planned chores, so growth and churn come from rare random actions.
_LIVE_MANAGER_ACTIONS: Final = {"invite": 0.3, "disable": 0.08, "archive": 0.04}
# The live stream's clock; a module attribute so tests can run hours of stream in a second.
_now_ns: Callable[[], int] = time.time_ns
_LIVE_RELOGIN_SHARE: Final = 0.03  # live sessions have no end of day, so some just restart

_TIMEZONES: Final = (
    "Asia/Kolkata",
    "Asia/Kolkata",
    "America/New_York",
    "Europe/Berlin",
    "UTC",
    "Europe/London",
    "America/Los_Angeles",
    "Australia/Sydney",
)
_FIRST_NAMES: Final = (
    "Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Sneha", "John", "Emily", "Michael", "Sarah",
    "Lukas", "Anna", "Jonas", "Lea", "Oliver", "Amelia", "Liam", "Chloe", "Mateo", "Sofia",
    "Kenji", "Yuki", "Omar", "Fatima", "Noah", "Grace", "Arjun", "Meera", "Felix", "Hannah",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Sharma", "Patel", "Iyer", "Nair", "Mehta", "Smith", "Johnson", "Brown", "Miller", "Davis",
    "Müller", "Schmidt", "Weber", "Fischer", "Wilson", "Taylor", "Garcia", "Lopez", "Tanaka",
    "Khan", "Das", "Rao", "Wagner", "Clarke", "Evans", "Singh", "Kowalski", "Rossi",
)  # fmt: skip
_COMPANY_WORDS: Final = (
    "Andolasoft", "Bluepeak", "Cobalt", "Deltaforge", "Evergreen", "Fjord", "Granite", "Helix",
    "Ironbark", "Juniper", "Keystone", "Lumen", "Meridian", "Northwind", "Orchid", "Pinnacle",
)  # fmt: skip
_PROJECT_WORDS: Final = (
    "Apollo", "Atlas", "Beacon", "Compass", "Falcon", "Harbor", "Horizon", "Mercury", "Nova",
    "Orbit", "Phoenix", "Quartz", "Summit", "Titan", "Vertex", "Zephyr",
)  # fmt: skip
_PROJECT_KINDS: Final = {
    "development": ("Web App", "Mobile App", "API", "Platform"),
    "marketing": ("Website Revamp", "Campaign", "SEO"),
    "support": ("Helpdesk", "Customer Care"),
    "internal": ("Ops", "HR Portal", "Infrastructure"),
}
_TASK_VERBS: Final = {
    "bug": ("Fix", "Investigate", "Patch"),
    "development": ("Implement", "Build", "Add"),
    "enhancement": ("Improve", "Speed up", "Polish"),
    "research": ("Evaluate", "Research", "Spike on"),
    "quality_assurance": ("Test", "Write test cases for", "Regression-test"),
    "maintenance": ("Upgrade", "Clean up", "Refactor"),
    "update": ("Update", "Revise", "Document"),
}
_TASK_OBJECTS: Final = (
    "login page", "checkout flow", "invoice export", "dashboard widgets", "search results",
    "email notifications", "user onboarding", "billing webhook", "REST API pagination",
    "password reset", "mobile navigation", "report scheduler", "file upload limits",
    "time sheet view", "Gantt chart", "kanban board", "SSO settings", "audit log",
)  # fmt: skip
_COMMENTS: Final = (
    "Looks good to me.",
    "Can you share steps to reproduce?",
    "Pushed a fix, please verify.",
    "Blocked on the API change, will pick up tomorrow.",
    "Client confirmed this on the call.",
    "Added screenshots of the issue.",
    "Moving this to the next milestone.",
    "Estimate updated after the review.",
    "Deployed to staging.",
    "Please prioritise, the client is waiting.",
    "Done from my side, over to QA.",
    "Found a regression in the edge case with empty input.",
)
_FILE_STEMS: Final = ("screenshot", "spec", "mockup", "invoice", "log", "report", "design")
_FILE_EXTENSIONS: Final = ("png", "pdf", "docx", "xlsx", "txt", "zip", "jpg")
_ESTIMATES_H: Final = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
_STORY_POINTS: Final = (1, 2, 3, 5, 8, 13)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate; one value object so a history is fully described by it (and its seed)."""

    seed: int = 42
    companies: int = 2
    users_per_company: int = 8
    projects_per_company: int = 3
    days: int = 3
    start_date: datetime.date | None = None  # None: `days` days ending yesterday (UTC)
    # Expected task creations per project per working day of its members; weekends are quiet
    # because few members work then, not because of a separate knob.
    tasks_per_project_per_day: float = 2.0
    late_rate: float = 0.0  # share of events delivered late
    max_late_days: int = 3  # late events are delivered up to this many days after they happened
    duplicate_rate: float = 0.0  # share of events delivered twice (same event_id, same content)

    def __post_init__(self) -> None:
        # Fail at construction: a zero or negative knob would otherwise surface as an empty or
        # endless history far from its cause.
        minimums = {
            "companies": 1,
            "users_per_company": 1,
            "projects_per_company": 1,
            "days": 1,
            "max_late_days": 1,
        }
        for name, minimum in minimums.items():
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {getattr(self, name)}")
        if self.tasks_per_project_per_day < 0:
            raise ValueError("tasks_per_project_per_day must be >= 0")
        for name in ("late_rate", "duplicate_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class Delivery:
    """One hand-off to Kafka; late and duplicate deliveries are what the pipeline must absorb."""

    record: dict[str, Any]  # an Avro-ready ActivityEvent dict
    delivered_at: datetime.datetime  # tz-aware UTC; when the app hands it to Kafka
    is_late: bool
    is_duplicate: bool


# --- internal state ----------------------------------------------------------------------------


class _Pool:
    """A bag of tasks with O(1) add, remove and random pick; lists alone remove in O(n)."""

    __slots__ = ("_index", "_items")

    def __init__(self) -> None:
        self._items: list[_Task] = []
        self._index: dict[int, int] = {}

    def add(self, task: _Task) -> None:
        self._index[task.task_id] = len(self._items)
        self._items.append(task)

    def remove(self, task: _Task) -> None:
        position = self._index.pop(task.task_id)
        last = self._items.pop()
        if last is not task:
            self._items[position] = last
            self._index[last.task_id] = position

    def sample(self, rng: random.Random, k: int) -> list[_Task]:
        items = self._items
        return [items[rng.randrange(len(items))] for _ in range(k)] if items else []


@dataclass(slots=True, eq=False)
class _User:
    user_id: int
    name: str
    email: str
    role: str
    user_type: str
    tz_name: str
    tz: ZoneInfo
    shift_start_min: int
    shift_len_min: int
    activity: float
    created_us: int = 0
    joined: bool = False
    active: bool = True
    session: int = -1  # start of the working session the user last logged in for
    running: _TimeEntry | None = None
    projects: dict[int, _Project] = field(default_factory=dict)
    # Per local date: (session start, session end, planned actions) or None for a day off.
    workdays: dict[datetime.date, tuple[int, int, int] | None] = field(default_factory=dict)

    @property
    def is_manager(self) -> bool:
        return self.role in ("owner", "admin")


@dataclass(slots=True, eq=False)
class _Milestone:
    milestone_id: int
    title: str
    due_date: datetime.date


@dataclass(slots=True, eq=False)
class _Project:
    project_id: int
    name: str
    short_name: str
    project_type: str
    creator: _User
    planned_members: list[_User]
    estimated_hours: float
    start_date: datetime.date | None = None
    end_date: datetime.date | None = None
    created: bool = False
    status: str = "active"
    next_number: int = 1
    members: dict[int, _User] = field(default_factory=dict)
    milestones: list[_Milestone] = field(default_factory=list)
    open_tasks: _Pool = field(default_factory=_Pool)
    closed_tasks: _Pool = field(default_factory=_Pool)

    @property
    def is_live(self) -> bool:
        return self.created and self.status == "active"


@dataclass(slots=True, eq=False)
class _Task:
    task_id: int
    project: _Project
    number: int
    title: str
    task_type: str
    priority: str
    created_us: int
    assignee: _User | None = None
    status: str = "New"
    due_date: datetime.date | None = None
    estimated_hours: float | None = None
    story_points: int | None = None
    milestone_id: int | None = None
    timers: int = 0  # running timers: the task may not be moved or deleted under them
    deleted: bool = False


@dataclass(slots=True, eq=False)
class _TimeEntry:
    time_log_id: int
    user: _User
    task: _Task
    started_us: int
    is_billable: bool
    ended_us: int = 0
    approval_status: str = "pending"


@dataclass(slots=True, eq=False)
class _Chore:
    """A planned one-off a manager carries out at their first work slot after `due_us`."""

    due_us: int
    kind: str  # invite | disable | archive
    target: _User | _Project


@dataclass(slots=True, eq=False)
class _Company:
    company_id: int
    domain: str  # staff email domain; the contract carries no company name
    hq_tz: str
    users: list[_User] = field(default_factory=list)
    projects: list[_Project] = field(default_factory=list)
    chores: list[_Chore] = field(default_factory=list)
    approvals: deque[_TimeEntry] = field(default_factory=deque)
    agenda: list[tuple[Any, ...]] = field(default_factory=list)
    clock: int = 0

    @property
    def owner(self) -> _User:
        return self.users[0]


# --- conversions and payloads ------------------------------------------------------------------


def _client_of(event_type: str, seed_bits: int) -> str:
    """Where the action was made (schema v2's `client`), drawn from the event id's bits.

    Using the id instead of the shared RNG keeps every other simulated value unchanged.
    """
    share = seed_bits % 100
    if event_type == "task_commented" and share < 10:
        return "email"  # OrangeScrum lets people reply to task e-mails
    if event_type in ("timer_started", "timer_stopped") and share < 40:
        return "mobile"
    return "web" if share < 75 else "mobile" if share < 93 else "api"


def _to_dt(us: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=us)


def _to_us(moment: datetime.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _SECOND + delta.microseconds


def _floor_s(us: int) -> int:
    return us - us % _SECOND


def _ceil_s(us: int) -> int:
    return -(-us // _SECOND) * _SECOND


def _local_us(tz: ZoneInfo, day: datetime.date, minute: int) -> int:
    local = datetime.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
    return _to_us(local.astimezone(UTC))


def _ascii(text: str) -> str:
    """Fold accents for email addresses (Müller -> muller); names keep theirs on purpose."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's sampler: exact for the small means used here and needs only rng.random()."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _user_state(user: _User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "user_type": user.user_type,
        "is_active": user.active,
        "timezone": user.tz_name,
        "created_at": _to_dt(user.created_us),
    }


def _project_state(project: _Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "short_name": project.short_name,
        "project_type": project.project_type,
        "status": project.status,
        "owner_user_id": project.creator.user_id,
        "start_date": project.start_date,
        "end_date": project.end_date,
        "estimated_hours": project.estimated_hours,
    }


def _task_state(task: _Task) -> dict[str, Any]:
    return {
        "task_number": task.number,
        "title": task.title,
        "task_type": task.task_type,
        "priority": task.priority,
        "status": task.status,
        "legend": TASK_STATUS_LEGEND[task.status],
        "assignee_user_id": task.assignee.user_id if task.assignee else None,
        "due_date": task.due_date,
        "estimated_hours": task.estimated_hours,
        "story_points": task.story_points,
        "milestone_id": task.milestone_id,
    }


def _time_log(entry: _TimeEntry) -> dict[str, Any]:
    return {
        "time_log_id": entry.time_log_id,
        "started_at": _to_dt(entry.started_us),
        "ended_at": _to_dt(entry.ended_us),
        "duration_seconds": (entry.ended_us - entry.started_us) // _SECOND,
        "is_billable": entry.is_billable,
        "approval_status": entry.approval_status,
    }


def _cumulative(weights: dict[str, float]) -> tuple[tuple[str, ...], list[float]]:
    return tuple(weights), list(itertools.accumulate(weights.values()))


# --- the simulation engine ---------------------------------------------------------------------


class _Simulator:
    """Companies, their state and every action; the drivers below only decide *when* to act.

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
        self.config = config
        self.rng = random.Random(config.seed)
        self.h_start, self.h_end = horizon
        self.live_rate = live_rate
        self.out: list[tuple[int, dict[str, Any]]] = []
        # One sequence per entity kind across all companies: ids are globally unique per kind.
        kinds = ("company", "user", "project", "task", "time_log", "comment", "milestone", "file")
        self._ids = {kind: itertools.count(1) for kind in kinds}
        self._seq = itertools.count()
        self._wall_us = 0
        self._live_agenda: list[tuple[Any, ...]] = []
        self.step = 0
        extra = _LIVE_MANAGER_ACTIONS if live_rate is not None else {}
        self._weights = {
            key: _cumulative({**weights, **(extra if key in ("owner", "admin") else {})})
            for key, weights in _ACTION_WEIGHTS.items()
        }
        self._actions: dict[str, Callable[[_Company, _User, tuple[int, int] | None], bool]] = {
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
        self.companies = [self._build_company() for _ in range(config.companies)]

    # --- clock ---------------------------------------------------------------------------------

    def wall(self) -> int:
        """Wall-clock microseconds, forced strictly increasing so live events never tie."""
        self._wall_us = max(_now_ns() // 1000, self._wall_us + 1)
        return self._wall_us

    def _at(self, company: _Company, planned: int) -> None:
        """Move the company clock to a planned moment; never backwards, so order = time."""
        if self.live_rate is not None:
            company.clock = max(self.wall(), company.clock + 1)
        else:
            company.clock = max(planned, company.clock + _SECOND)

    def _later(self, company: _Company, low_s: int, high_s: int) -> None:
        """Advance for a follow-up event of the same action (a click or two later)."""
        gap = self.rng.randint(low_s * _SECOND, high_s * _SECOND)
        if self.live_rate is not None:
            company.clock = max(self.wall(), company.clock + 1)
        else:
            company.clock += gap

    def _push(
        self,
        company: _Company,
        due: int,
        kind: str,
        user: _User,
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
        company: _Company,
        event_type: str,
        actor: _User,
        project: _Project | None = None,
        task: _Task | None = None,
        **payloads: dict[str, Any] | None,
    ) -> None:
        event_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        record: dict[str, Any] = {
            "event_id": str(event_id),
            "event_type": event_type,
            "event_timestamp": _to_dt(company.clock),
            "company_id": company.company_id,
            "user_id": actor.user_id,
            "project_id": project.project_id if project is not None else None,
            "task_id": task.task_id if task is not None else None,
            "client": _client_of(event_type, event_id.int),
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
        company: _Company,
        event_type: str,
        actor: _User,
        task: _Task,
        **payloads: dict[str, Any] | None,
    ) -> None:
        state = _task_state(task)
        self._emit(company, event_type, actor, task.project, task, task_state=state, **payloads)

    # --- cast ----------------------------------------------------------------------------------

    def _build_company(self) -> _Company:
        rng = self.rng
        company_id = next(self._ids["company"])
        company = _Company(
            company_id=company_id,
            domain=f"{rng.choice(_COMPANY_WORDS).lower()}{company_id}.example",
            hq_tz=rng.choice(_TIMEZONES),
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

    def _new_user(self, company: _Company, role: str, user_type: str) -> _User:
        rng = self.rng
        user_id = next(self._ids["user"])
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        # Most staff sit at headquarters; clients and remote hires bring other time zones.
        stays_home = user_type == "internal" and rng.random() < 0.75
        tz_name = company.hq_tz if stays_home else rng.choice(_TIMEZONES)
        domain = (
            company.domain if user_type == "internal" else f"client{company.company_id}.example"
        )
        activity_key = "external" if user_type == "external" else role
        return _User(
            user_id=user_id,
            name=f"{first} {last}",
            email=_ascii(f"{first}.{last}.{user_id}@{domain}".lower()),
            role=role,
            user_type=user_type,
            tz_name=tz_name,
            tz=ZoneInfo(tz_name),
            shift_start_min=rng.choice(_SHIFT_STARTS_MIN),
            shift_len_min=rng.choice(_SHIFT_LENGTHS_MIN),
            activity=_ACTIVITY[activity_key] * rng.uniform(0.7, 1.3),
        )

    def _new_project(self, company: _Company) -> _Project:
        rng = self.rng
        project_type = rng.choice(PROJECT_TYPES)
        word = rng.choice(_PROJECT_WORDS)
        managers = [u for u in company.users if u.is_manager]
        creator = company.owner if rng.random() < 0.6 else rng.choice(managers)
        project_id = next(self._ids["project"])
        return _Project(
            project_id=project_id,
            name=f"{word} {rng.choice(_PROJECT_KINDS[project_type])}",
            short_name=f"{word[:3].upper()}{project_id}",
            project_type=project_type,
            creator=creator,
            planned_members=self._plan_members(company, creator),
            estimated_hours=float(rng.randrange(100, 2000, 50)),
        )

    def _plan_members(self, company: _Company, creator: _User) -> list[_User]:
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

    def _give_everyone_a_project(self, company: _Company) -> None:
        """Nobody is hired to idle: a user left out by chance joins one random project."""
        for user in company.users[1:]:
            if not any(user is p.creator or user in p.planned_members for p in company.projects):
                self.rng.choice(company.projects).planned_members.append(user)

    def _plan_chores(self, company: _Company) -> list[_Chore]:
        """Late joiners, departures and end-of-life archiving, spread over the history."""
        rng, days = self.rng, self.config.days
        chores: list[_Chore] = []
        others = company.users[1:]
        if days >= 3:
            members = [u for u in others if u.role == "member"]
            for user in self.rng.sample(members, min(len(members), len(others) // 7)):
                due = self.h_start + rng.randint(1, days - 1) * _DAY
                chores.append(_Chore(due, "invite", user))
        initial = [u for u in others if not any(c.target is u for c in chores)]
        if days >= 7 and len(company.users) >= 4:
            for user in rng.sample(initial, max(0, min(len(initial) - 2, max(1, days // 14)))):
                due = self.h_start + int(rng.uniform(0.4, 0.9) * days * _DAY)
                chores.append(_Chore(due, "disable", user))
        if days >= 7 and len(company.projects) >= 2:
            count = min(len(company.projects) - 1, max(1, days // 21))
            for project in rng.sample(company.projects, count):
                due = self.h_start + int(rng.uniform(0.8, 0.92) * days * _DAY)
                chores.append(_Chore(due, "archive", project))
        chores.sort(key=lambda chore: chore.due_us)
        return chores

    def _initial_users(self, company: _Company) -> list[_User]:
        late = {id(c.target) for c in company.chores if c.kind == "invite"}
        return [u for u in company.users if id(u) not in late]

    # --- setup: the owner signs up and brings the team -----------------------------------------

    def setup(self, company: _Company, planned: int) -> None:
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

    def _join(self, company: _Company, user: _User, actor: _User, event_type: str) -> None:
        user.joined, user.created_us = True, company.clock
        self._emit(company, event_type, actor, user_state=_user_state(user))

    def _create_project(self, company: _Company, project: _Project) -> None:
        rng = self.rng
        creator = project.creator
        today = _to_dt(company.clock).date()
        project.created = True
        project.start_date = today
        project.end_date = today + datetime.timedelta(days=rng.randint(30, 180))
        project.members[creator.user_id] = creator
        creator.projects[project.project_id] = project
        self._emit(
            company, "project_created", creator, project, project_state=_project_state(project)
        )
        self._later(company, 2, 20)
        self._emit(
            company, "project_member_added", creator, project, user_state=_user_state(creator)
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

    def _add_member(self, company: _Company, project: _Project, user: _User, actor: _User) -> None:
        project.members[user.user_id] = user
        user.projects[project.project_id] = project
        self._emit(company, "project_member_added", actor, project, user_state=_user_state(user))

    # --- history planning ----------------------------------------------------------------------

    def _workday(self, user: _User, day: datetime.date) -> tuple[int, int, int] | None:
        """The user's session on a local date (drawn once, then remembered) or None: day off."""
        if day in user.workdays:
            return user.workdays[day]
        weekend = day.weekday() >= 5
        works = (0.2 if weekend else 0.93) * (0.6 if user.user_type == "external" else 1.0)
        session = self._draw_session(user, day) if self.rng.random() < works else None
        user.workdays[day] = session
        return session

    def _draw_session(self, user: _User, day: datetime.date) -> tuple[int, int, int]:
        rng = self.rng
        weekend = day.weekday() >= 5
        start = max(user.shift_start_min + rng.randint(-15, 15), _EARLIEST_START_MIN)
        length = user.shift_len_min + rng.randint(-20, 20)
        if weekend:
            length = length * 2 // 5  # a quick look at the weekend, not a full day
        end = min(start + length, _LATEST_END_MIN)
        mean = user.activity * (0.4 if weekend else 1.0)
        actions = max(1, round(rng.gauss(mean, mean / 4)))
        return _local_us(user.tz, day, start), _local_us(user.tz, day, end), actions

    def schedule_setups(self) -> None:
        for company in self.companies:
            self._push(company, self._setup_time(company), "setup", company.owner)

    def _setup_time(self, company: _Company) -> int:
        """The owner's first session start inside the first day: they sign up at work."""
        owner = company.owner
        first_day = _to_dt(self.h_start).date()
        for offset in (-1, 0, 1):
            day = first_day + datetime.timedelta(days=offset)
            start = _local_us(owner.tz, day, owner.shift_start_min)
            if self.h_start <= start < self.h_start + _DAY:
                session = self._workday(owner, day) or self._draw_session(owner, day)
                owner.workdays[day] = session  # sign-up day is a working day, weekend or not
                return min(max(session[0], self.h_start), self.h_start + _DAY - _HOUR)
        return self.h_start + _HOUR  # only reachable around DST jumps

    def plan_day(self, company: _Company, day_index: int) -> None:
        """Queue the sessions starting on this UTC day and the day's task creations."""
        day_start = self.h_start + day_index * _DAY
        day_end = day_start + _DAY
        utc_day = _to_dt(day_start).date()
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

    def _plan_session(self, company: _Company, user: _User, session: tuple[int, int, int]) -> None:
        start, end, actions = session
        low = max(start, self.h_start)
        if low >= end:
            return
        window = (start, end)
        for _ in range(actions):
            self._push(company, self.rng.randrange(low, end), "work", user, window)

    def _plan_creations(
        self, company: _Company, project: _Project, day_start: int, utc_day: datetime.date
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
        self, user: _User, day_start: int, utc_day: datetime.date
    ) -> tuple[int, tuple[int, int]] | None:
        """A random moment of the user's sessions that falls on this UTC day."""
        parts = []
        for offset in (-1, 0, 1):
            session = self._workday(user, utc_day + datetime.timedelta(days=offset))
            if session is None:
                continue
            low, high = max(session[0], day_start, self.h_start), min(session[1], day_start + _DAY)
            if low < high:
                parts.append((low, high, session))
        if not parts:
            return None
        low, high, session = self.rng.choice(parts)
        return self.rng.randrange(low, high), (session[0], session[1])

    def run_until(self, company: _Company, end: int) -> None:
        """Carry out every planned action due before `end`, in time order."""
        agenda = company.agenda
        while agenda and agenda[0][0] < end:
            due, _, kind, user, window, target = heapq.heappop(agenda)
            self._handle(company, kind, user, due, window, target)

    def _handle(
        self,
        company: _Company,
        kind: str,
        user: _User,
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

    def _ensure_session(
        self, company: _Company, user: _User, window: tuple[int, int] | None
    ) -> None:
        """Log in at the first action of each working session."""
        session = window[0] if window is not None else 0
        if user.session != session:
            user.session = session
            self._emit(company, "user_logged_in", user, user_state=_user_state(user))
            self._later(company, 5, 90)

    # --- one work slot -------------------------------------------------------------------------

    def _work(self, company: _Company, user: _User, window: tuple[int, int] | None) -> None:
        if user.is_manager and self._do_chore(company, user):
            return
        key = "external" if user.user_type == "external" else user.role
        names, cumulative = self._weights[key]
        action = self.rng.choices(names, cum_weights=cumulative)[0]
        if not self._actions[action](company, user, window):
            self._act_comment(company, user, window)

    def _do_chore(self, company: _Company, actor: _User) -> bool:
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

    def _projects_of(self, user: _User) -> list[_Project]:
        return [p for p in user.projects.values() if p.status == "active"]

    def _pick_task(
        self, user: _User, *, closed: bool = False, statuses: tuple[str, ...] | None = None
    ) -> _Task | None:
        """A task of one of the user's projects, preferring the user's own assignments."""
        projects = self._projects_of(user)
        if not projects:
            return None
        project = self.rng.choice(projects)
        pool = project.closed_tasks if closed else project.open_tasks
        sample = [t for t in pool.sample(self.rng, 3) if statuses is None or t.status in statuses]
        mine = [t for t in sample if t.assignee is user]
        return (mine or sample or [None])[0]

    def _active_members(self, project: _Project, *, internal: bool = False) -> list[_User]:
        return [
            u
            for u in project.members.values()
            if u.active and (not internal or u.user_type == "internal")
        ]

    # --- task actions --------------------------------------------------------------------------

    def _create_task(self, company: _Company, actor: _User, project: _Project) -> None:
        rng = self.rng
        task_type = "bug" if actor.user_type == "external" else rng.choice(TASK_TYPES)
        today = _to_dt(company.clock).date()
        task = _Task(
            task_id=next(self._ids["task"]),
            project=project,
            number=project.next_number,
            title=f"{rng.choice(_TASK_VERBS[task_type])} {rng.choice(_TASK_OBJECTS)}",
            task_type=task_type,
            priority=rng.choice(TASK_PRIORITIES),
            created_us=company.clock,
            due_date=today + datetime.timedelta(days=rng.randint(2, 21))
            if rng.random() < 0.8
            else None,
            estimated_hours=rng.choice(_ESTIMATES_H) if rng.random() < 0.7 else None,
            story_points=rng.choice(_STORY_POINTS) if rng.random() < 0.5 else None,
        )
        project.next_number += 1
        if project.milestones and rng.random() < 0.4:
            task.milestone_id = rng.choice(project.milestones).milestone_id
        staff = self._active_members(project, internal=True)
        if staff and rng.random() < 0.5:
            task.assignee = rng.choice(staff)
        project.open_tasks.add(task)
        self._emit_task(company, "task_created", actor, task)

    def _set_status(self, company: _Company, actor: _User, task: _Task, status: str) -> None:
        pools = task.project
        if task.status == "Closed":
            pools.closed_tasks.remove(task)
            pools.open_tasks.add(task)
        elif status == "Closed":
            pools.open_tasks.remove(task)
            pools.closed_tasks.add(task)
        task.status = status
        self._emit_task(company, "task_status_changed", actor, task)

    def _act_advance(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user)
        if task is None:
            return False
        if task.status == "Resolved":
            status = "Opened" if self.rng.random() < _REOPEN_SHARE else "Closed"
        else:
            status = _STATUS_TRANSITIONS[task.status][0]
        if status == "Start" and task.assignee is None and user.user_type == "internal":
            self._assign(company, user, task, user)  # whoever starts unowned work takes it
            self._later(company, 5, 60)
        self._set_status(company, user, task, status)
        return True

    def _act_modify(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, statuses=("Opened", "Start", "Resolved"))
        if task is None:
            return False
        if task.estimated_hours is not None:
            task.estimated_hours += self.rng.choice((1.0, 2.0, 4.0))
        self._set_status(company, user, task, "Modified")
        return True

    def _act_reopen(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, closed=True)
        if task is None:
            return False
        self._set_status(company, user, task, "Opened")
        return True

    def _assign(self, company: _Company, actor: _User, task: _Task, assignee: _User) -> None:
        task.assignee = assignee
        self._emit_task(company, "task_assigned", actor, task)

    def _act_assign(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user)
        if task is None:
            return False
        staff = [
            u for u in self._active_members(task.project, internal=True) if u is not task.assignee
        ]
        if not staff:
            return False
        self._assign(company, user, task, self.rng.choice(staff))
        return True

    def _act_update(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        rng = self.rng
        task = self._pick_task(user, closed=rng.random() < 0.1)
        if task is None:
            return False
        change = rng.randrange(4)
        if change == 0:
            task.priority = rng.choice(TASK_PRIORITIES)
        elif change == 1:
            base = task.due_date or _to_dt(company.clock).date()
            task.due_date = base + datetime.timedelta(days=rng.randint(1, 7))
        elif change == 2:
            task.story_points = rng.choice(_STORY_POINTS)
        elif task.project.milestones:
            task.milestone_id = rng.choice(task.project.milestones).milestone_id
        else:
            task.estimated_hours = rng.choice(_ESTIMATES_H)
        self._emit_task(company, "task_updated", user, task)
        return True

    def _act_comment(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, closed=self.rng.random() < 0.1) or self._pick_task(user)
        if task is None:
            return False
        comment = {"comment_id": next(self._ids["comment"]), "body": self.rng.choice(_COMMENTS)}
        self._emit_task(company, "task_commented", user, task, comment=comment)
        return True

    def _act_upload(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        rng = self.rng
        task = self._pick_task(user)
        if task is None:
            return False
        file_id = next(self._ids["file"])
        attachment = {
            "file_id": file_id,
            "file_name": f"{rng.choice(_FILE_STEMS)}_{file_id}.{rng.choice(_FILE_EXTENSIONS)}",
            "size_bytes": int(rng.lognormvariate(12, 1.5)) + 1,
        }
        self._emit_task(company, "file_uploaded", user, task, attachment=attachment)
        return True

    def _act_move(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user)
        if task is None or task.timers:
            return False
        targets = [p for p in self._projects_of(user) if p is not task.project]
        if not targets:
            return False
        target = self.rng.choice(targets)
        task.project.open_tasks.remove(task)
        target.open_tasks.add(task)
        task.project, task.number = target, target.next_number
        target.next_number += 1
        task.milestone_id = None  # milestones belong to the old project
        if task.assignee is not None and task.assignee.user_id not in target.members:
            task.assignee = None
        self._emit_task(company, "task_moved", user, task)
        return True

    def _act_delete(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, statuses=("New", "Opened"))
        if task is None or task.timers:
            return False
        task.project.open_tasks.remove(task)
        task.deleted = True
        self._emit_task(company, "task_deleted", user, task)
        return True

    # --- time tracking -------------------------------------------------------------------------

    def _act_timer(self, company: _Company, user: _User, window: tuple[int, int] | None) -> bool:
        rng = self.rng
        if user.running is not None:
            return self._stop_early(company, user, user.running)
        task = self._pick_task(user, statuses=("New", "Opened", "Start", "Modified"))
        if task is None:
            return False
        start = company.clock
        if self.live_rate is not None:  # stop after as many steps as 30 s-15 min take at pace
            due = self.step + max(1, round(self.live_rate * rng.uniform(30, 900)))
        elif window is not None:
            limit = min(window[1], self.h_end - _HISTORY_END_MARGIN) - start
            if limit < _MIN_TIMER:
                return False
            due = start + min(rng.randint(20 * _MINUTE, 180 * _MINUTE), limit)
        else:
            return False  # history actions always run inside a session
        entry = _TimeEntry(
            time_log_id=next(self._ids["time_log"]),
            user=user,
            task=task,
            started_us=_floor_s(start),
            is_billable=rng.random() < _BILLABLE_SHARE,
        )
        user.running = entry
        task.timers += 1
        # The contract's TimeLog needs an end; a running timer has none yet, so the start event
        # carries no time_log and the matching timer_stopped (same user, same task) carries it.
        self._emit(company, "timer_started", user, task.project, task)
        self._push(company, due, "timer_stop", user, target=entry)
        return True

    def _stop_early(self, company: _Company, user: _User, entry: _TimeEntry) -> bool:
        """Stop a running timer by hand, before its planned stop (which then does nothing)."""
        if self.live_rate is not None or company.clock - entry.started_us < _MIN_TIMER // 3:
            return False  # live content must not hinge on the wall clock
        self._finish_timer(company, user, entry)
        return True

    def _stop_timer(self, company: _Company, user: _User, due: int, entry: _TimeEntry) -> None:
        if user.running is not entry:
            return  # already stopped by hand
        self._at(company, due)
        self._finish_timer(company, user, entry)

    def _finish_timer(self, company: _Company, user: _User, entry: _TimeEntry) -> None:
        entry.ended_us = _floor_s(company.clock)
        # Only a live caller outrunning its own rate stops a timer within the second it began;
        # the entry then starts a second early rather than ending in the future.
        entry.started_us = min(entry.started_us, entry.ended_us - _SECOND)
        user.running = None
        entry.task.timers -= 1
        self._emit(
            company,
            "timer_stopped",
            user,
            entry.task.project,
            entry.task,
            time_log=_time_log(entry),
        )
        company.approvals.append(entry)

    def _act_log_time(self, company: _Company, user: _User, window: tuple[int, int] | None) -> bool:
        """A manual entry for work done earlier in the session (after the task existed)."""
        rng = self.rng
        task = self._pick_task(user, closed=rng.random() < 0.2) or self._pick_task(user)
        if task is None:
            return False
        ended = _floor_s(company.clock) - rng.randint(0, 30) * _MINUTE
        started = ended - rng.randint(15, 150) * _MINUTE
        if self.live_rate is None:
            floor = max(task.created_us, user.created_us, self.h_start, window[0] if window else 0)
            started = max(started, _ceil_s(floor))
            if ended - started < 5 * _MINUTE:
                return False
        # Live mode skips those bounds: checking them against the wall clock would make the
        # stream's content depend on the caller's pace, so live entries may predate the task.
        entry = _TimeEntry(
            time_log_id=next(self._ids["time_log"]),
            user=user,
            task=task,
            started_us=started,
            ended_us=ended,
            is_billable=rng.random() < _BILLABLE_SHARE,
        )
        self._emit(company, "time_logged", user, task.project, task, time_log=_time_log(entry))
        company.approvals.append(entry)
        return True

    def _act_approve(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        """Work through the oldest pending entries this manager may decide."""
        queue, decided = company.approvals, 0
        for _attempt in range(min(len(queue), 6)):
            entry = queue.popleft()
            project = entry.task.project
            if entry.task.deleted or project.status != "active":
                continue  # nobody decides entries of deleted tasks or archived projects
            if entry.user is user or user.user_id not in project.members:
                queue.append(entry)  # someone else's call
                continue
            if decided:
                self._later(company, 5, 40)
            rejected = self.rng.random() < _REJECT_SHARE
            entry.approval_status = "rejected" if rejected else "approved"
            event_type = "time_entry_rejected" if rejected else "time_entry_approved"
            self._emit(company, event_type, user, project, entry.task, time_log=_time_log(entry))
            decided += 1
            if decided == 3:
                break
        return decided > 0

    # --- management ----------------------------------------------------------------------------

    def _create_milestone(self, company: _Company, actor: _User, project: _Project) -> None:
        rng = self.rng
        count = len(project.milestones)
        title = f"Sprint {count + 1}" if rng.random() < 0.7 else f"Release 1.{count}"
        milestone = _Milestone(
            milestone_id=next(self._ids["milestone"]),
            title=title,
            due_date=_to_dt(company.clock).date() + datetime.timedelta(days=rng.randint(7, 30)),
        )
        project.milestones.append(milestone)
        payload = {
            "milestone_id": milestone.milestone_id,
            "title": milestone.title,
            "due_date": milestone.due_date,
        }
        self._emit(company, "milestone_created", actor, project, milestone=payload)

    def _act_milestone(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        projects = self._projects_of(user)
        if not projects:
            return False
        self._create_milestone(company, user, self.rng.choice(projects))
        return True

    def _act_project_update(
        self, company: _Company, user: _User, _: tuple[int, int] | None
    ) -> bool:
        rng = self.rng
        projects = self._projects_of(user)
        if not projects:
            return False
        project = rng.choice(projects)
        if rng.random() < 0.5:
            project.estimated_hours += float(rng.randrange(-100, 300, 50) or 50)
            project.estimated_hours = max(project.estimated_hours, 50.0)
        elif project.end_date is not None:
            project.end_date += datetime.timedelta(days=rng.randint(7, 30))
        self._emit(company, "project_updated", user, project, project_state=_project_state(project))
        return True

    def _act_member_add(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
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

    def _act_member_remove(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
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
        self._emit(company, "project_member_removed", user, project, user_state=_user_state(member))
        return True

    def _act_role_change(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        staff = [
            u
            for u in company.users[1:]
            if u.joined and u.active and u.user_type == "internal" and u is not user
        ]
        if not staff:
            return False
        target = self.rng.choice(staff)
        target.role = "member" if target.role == "admin" else "admin"
        self._emit(company, "user_role_changed", user, user_state=_user_state(target))
        return True

    def _invite(self, company: _Company, actor: _User, user: _User) -> bool:
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

    def _disable(self, company: _Company, actor: _User, user: _User) -> bool:
        if user is actor or user.running is not None or not user.joined:
            return False  # try again at a later slot, or through another manager
        if not user.active:
            return True
        user.active = False
        self._emit(company, "user_disabled", actor, user_state=_user_state(user))
        return True

    def _archive(self, company: _Company, actor: _User, project: _Project) -> bool:
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
            company, "project_archived", actor, project, project_state=_project_state(project)
        )
        return True

    def _act_invite(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        user_type = "external" if self.rng.random() < 0.2 else "internal"
        newcomer = self._new_user(company, "member", user_type)
        company.users.append(newcomer)
        return self._invite(company, user, newcomer)

    def _act_disable(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        active = [u for u in company.users[1:] if u.active and u.joined and u is not user]
        if len(active) < 3:
            return False  # a live tenant must not run out of people
        return self._disable(company, user, self.rng.choice(active))

    def _act_archive(self, company: _Company, user: _User, _: tuple[int, int] | None) -> bool:
        live = [p for p in company.projects if p.status == "active"]
        if len(live) < 2:
            return False
        return self._archive(company, user, self.rng.choice(live))

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
        if rng.random() < _LIVE_RELOGIN_SHARE:
            user.session = -1  # a new session: the next action logs in again
        create_share = min(0.3, 0.02 * self.config.tasks_per_project_per_day)
        projects = self._projects_of(user)
        if rng.random() < create_share and projects:
            self._handle(company, "create", user, 0, None, rng.choice(projects))
        else:
            self._handle(company, "work", user, 0, None, None)


# --- drivers -----------------------------------------------------------------------------------


def _history_horizon(config: SimulationConfig) -> tuple[int, int]:
    start_date = config.start_date
    if start_date is None:
        # The one wall-clock read of history mode: a date, so one day's runs stay identical.
        start_date = datetime.datetime.now(UTC).date() - datetime.timedelta(days=config.days)
    start = _to_us(datetime.datetime.combine(start_date, datetime.time(), tzinfo=UTC))
    return start, start + config.days * _DAY


def _deliveries(
    rng: random.Random, config: SimulationConfig, timestamp: int, record: dict[str, Any]
) -> list[tuple[int, Delivery]]:
    """How the producer hands one event over: usually seconds later, sometimes late or twice."""
    late = rng.random() < config.late_rate
    if late:
        delay = rng.randint(_HOUR, config.max_late_days * _DAY)
    else:
        delay = rng.randint(_SECOND // 5, 5 * _SECOND)
    delivered = timestamp + delay
    out = [(delivered, Delivery(record, _to_dt(delivered), late, False))]
    if rng.random() < config.duplicate_rate:
        again = delivered + rng.randint(_SECOND, 120 * _SECOND)  # a producer retry
        out.append((again, Delivery(dict(record), _to_dt(again), late, True)))
    return out


def simulate_history(config: SimulationConfig) -> Iterator[Delivery]:
    """Deliveries sorted by delivered_at (stable order), deterministic per seed.

    Streams day by day, so a month of fifty companies never sits in memory at once; events
    happen inside [start_date, start_date + days) and may be delivered after it.
    """
    horizon = _history_horizon(config)
    simulator = _Simulator(config, horizon)
    simulator.schedule_setups()
    pending: list[tuple[int, int, Delivery]] = []
    order = itertools.count()
    events = late = duplicates = 0
    for day_index in range(config.days):
        day_end = horizon[0] + (day_index + 1) * _DAY
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


def iter_live(config: SimulationConfig, rate_per_second: float) -> Iterator[Delivery]:
    """An endless stream of fresh events stamped with the wall clock; the caller paces it.

    Content (who does what, ids) is deterministic per seed; timestamps are not. Working hours
    do not apply, since a demo runs whenever it runs. `rate_per_second` only scales how many
    steps a timer stays running, so timers last seconds to minutes at the caller's pace. Late
    and duplicate deliveries are held back and yielded once their delivered_at has passed.
    """
    if rate_per_second <= 0:
        raise ValueError(f"rate_per_second must be > 0, got {rate_per_second}")
    simulator = _Simulator(config, (0, 2**62), live_rate=rate_per_second)
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
                due = timestamp + rng.randint(_HOUR, config.max_late_days * _DAY)
                heapq.heappush(held, (due, next(order), record, True, False))
            else:
                yield Delivery(record, _to_dt(timestamp), False, False)
                due = timestamp
            if rng.random() < config.duplicate_rate:
                again = due + rng.randint(_SECOND // 5, 5 * _SECOND)
                heapq.heappush(held, (again, next(order), dict(record), late, True))
        simulator.out.clear()
        while held and held[0][0] <= simulator.wall():
            _, _, record, late, duplicate = heapq.heappop(held)
            yield Delivery(record, _to_dt(simulator.wall()), late, duplicate)
        simulator.live_step()
