"""The mutable world the engine acts on: companies, their people, projects, tasks and timers.

Plain slotted dataclasses compared by identity (``eq=False``): two users with equal fields are
still two people, and identity comparison keeps membership checks cheap. Times are integer
microseconds (see ``clock``). Nothing here draws from the RNG or emits records.
"""

from __future__ import annotations

import datetime
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo


class TaskPool:
    """A bag of tasks with O(1) add, remove and random pick; lists alone remove in O(n)."""

    __slots__ = ("_index", "_items")

    def __init__(self) -> None:
        self._items: list[Task] = []
        self._index: dict[int, int] = {}

    def add(self, task: Task) -> None:
        self._index[task.task_id] = len(self._items)
        self._items.append(task)

    def remove(self, task: Task) -> None:
        position = self._index.pop(task.task_id)
        last = self._items.pop()
        if last is not task:
            self._items[position] = last
            self._index[last.task_id] = position

    def sample(self, rng: random.Random, k: int) -> list[Task]:
        items = self._items
        return [items[rng.randrange(len(items))] for _ in range(k)] if items else []


@dataclass(slots=True, eq=False)
class User:
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
    running: TimeEntry | None = None
    projects: dict[int, Project] = field(default_factory=dict)
    # Per local date: (session start, session end, planned actions) or None for a day off.
    workdays: dict[datetime.date, tuple[int, int, int] | None] = field(default_factory=dict)

    @property
    def is_manager(self) -> bool:
        return self.role in ("owner", "admin")


@dataclass(slots=True, eq=False)
class Milestone:
    milestone_id: int
    title: str
    due_date: datetime.date


@dataclass(slots=True, eq=False)
class Project:
    project_id: int
    name: str
    short_name: str
    project_type: str
    creator: User
    planned_members: list[User]
    estimated_hours: float
    start_date: datetime.date | None = None
    end_date: datetime.date | None = None
    created: bool = False
    status: str = "active"
    next_number: int = 1
    members: dict[int, User] = field(default_factory=dict)
    milestones: list[Milestone] = field(default_factory=list)
    open_tasks: TaskPool = field(default_factory=TaskPool)
    closed_tasks: TaskPool = field(default_factory=TaskPool)

    @property
    def is_live(self) -> bool:
        return self.created and self.status == "active"


@dataclass(slots=True, eq=False)
class Task:
    task_id: int
    project: Project
    number: int
    title: str
    task_type: str
    priority: str
    created_us: int
    assignee: User | None = None
    status: str = "New"
    due_date: datetime.date | None = None
    estimated_hours: float | None = None
    story_points: int | None = None
    milestone_id: int | None = None
    timers: int = 0  # running timers: the task may not be moved or deleted under them
    deleted: bool = False


@dataclass(slots=True, eq=False)
class TimeEntry:
    time_log_id: int
    user: User
    task: Task
    started_us: int
    is_billable: bool
    ended_us: int = 0
    approval_status: str = "pending"


@dataclass(slots=True, eq=False)
class Chore:
    """A planned one-off a manager carries out at their first work slot after `due_us`."""

    due_us: int
    kind: str  # invite | disable | archive
    target: User | Project


@dataclass(slots=True, eq=False)
class Company:
    company_id: int
    domain: str  # staff email domain; the contract carries no company name
    hq_tz: str
    users: list[User] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    chores: list[Chore] = field(default_factory=list)
    approvals: deque[TimeEntry] = field(default_factory=deque)
    agenda: list[tuple[Any, ...]] = field(default_factory=list)
    clock: int = 0

    @property
    def owner(self) -> User:
        return self.users[0]
