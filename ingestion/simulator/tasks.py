"""Task actions: create, walk the status legend, assign, edit, comment, attach, move, delete."""

from __future__ import annotations

import datetime

from ingestion.simulator.clock import to_dt
from ingestion.simulator.core import SimulatorCore
from ingestion.simulator.state import Company, Project, Task, User
from ingestion.simulator.tuning import REOPEN_SHARE, STATUS_TRANSITIONS
from ingestion.simulator.vocabulary import (
    COMMENTS,
    ESTIMATES_H,
    FILE_EXTENSIONS,
    FILE_STEMS,
    STORY_POINTS,
    TASK_OBJECTS,
    TASK_VERBS,
)
from orangescrum.core.contract.events import TASK_PRIORITIES, TASK_TYPES


class TaskActions(SimulatorCore):
    """What users do to tasks. Each ``_act_*`` returns False when it found nothing to act on."""

    def _create_task(self, company: Company, actor: User, project: Project) -> None:
        rng = self.rng
        task_type = "bug" if actor.user_type == "external" else rng.choice(TASK_TYPES)
        today = to_dt(company.clock).date()
        task = Task(
            task_id=next(self._ids["task"]),
            project=project,
            number=project.next_number,
            title=f"{rng.choice(TASK_VERBS[task_type])} {rng.choice(TASK_OBJECTS)}",
            task_type=task_type,
            priority=rng.choice(TASK_PRIORITIES),
            created_us=company.clock,
            due_date=today + datetime.timedelta(days=rng.randint(2, 21))
            if rng.random() < 0.8
            else None,
            estimated_hours=rng.choice(ESTIMATES_H) if rng.random() < 0.7 else None,
            story_points=rng.choice(STORY_POINTS) if rng.random() < 0.5 else None,
        )
        project.next_number += 1
        if project.milestones and rng.random() < 0.4:
            task.milestone_id = rng.choice(project.milestones).milestone_id
        staff = self._active_members(project, internal=True)
        if staff and rng.random() < 0.5:
            task.assignee = rng.choice(staff)
        project.open_tasks.add(task)
        self._emit_task(company, "task_created", actor, task)

    def _set_status(self, company: Company, actor: User, task: Task, status: str) -> None:
        pools = task.project
        if task.status == "Closed":
            pools.closed_tasks.remove(task)
            pools.open_tasks.add(task)
        elif status == "Closed":
            pools.open_tasks.remove(task)
            pools.closed_tasks.add(task)
        task.status = status
        self._emit_task(company, "task_status_changed", actor, task)

    def _act_advance(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user)
        if task is None:
            return False
        if task.status == "Resolved":
            status = "Opened" if self.rng.random() < REOPEN_SHARE else "Closed"
        else:
            status = STATUS_TRANSITIONS[task.status][0]
        if status == "Start" and task.assignee is None and user.user_type == "internal":
            self._assign(company, user, task, user)  # whoever starts unowned work takes it
            self._later(company, 5, 60)
        self._set_status(company, user, task, status)
        return True

    def _act_modify(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, statuses=("Opened", "Start", "Resolved"))
        if task is None:
            return False
        if task.estimated_hours is not None:
            task.estimated_hours += self.rng.choice((1.0, 2.0, 4.0))
        self._set_status(company, user, task, "Modified")
        return True

    def _act_reopen(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, closed=True)
        if task is None:
            return False
        self._set_status(company, user, task, "Opened")
        return True

    def _assign(self, company: Company, actor: User, task: Task, assignee: User) -> None:
        task.assignee = assignee
        self._emit_task(company, "task_assigned", actor, task)

    def _act_assign(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
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

    def _act_update(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        rng = self.rng
        task = self._pick_task(user, closed=rng.random() < 0.1)
        if task is None:
            return False
        change = rng.randrange(4)
        if change == 0:
            task.priority = rng.choice(TASK_PRIORITIES)
        elif change == 1:
            base = task.due_date or to_dt(company.clock).date()
            task.due_date = base + datetime.timedelta(days=rng.randint(1, 7))
        elif change == 2:
            task.story_points = rng.choice(STORY_POINTS)
        elif task.project.milestones:
            task.milestone_id = rng.choice(task.project.milestones).milestone_id
        else:
            task.estimated_hours = rng.choice(ESTIMATES_H)
        self._emit_task(company, "task_updated", user, task)
        return True

    def _act_comment(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, closed=self.rng.random() < 0.1) or self._pick_task(user)
        if task is None:
            return False
        comment = {"comment_id": next(self._ids["comment"]), "body": self.rng.choice(COMMENTS)}
        self._emit_task(company, "task_commented", user, task, comment=comment)
        return True

    def _act_upload(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        rng = self.rng
        task = self._pick_task(user)
        if task is None:
            return False
        file_id = next(self._ids["file"])
        attachment = {
            "file_id": file_id,
            "file_name": f"{rng.choice(FILE_STEMS)}_{file_id}.{rng.choice(FILE_EXTENSIONS)}",
            "size_bytes": int(rng.lognormvariate(12, 1.5)) + 1,
        }
        self._emit_task(company, "file_uploaded", user, task, attachment=attachment)
        return True

    def _act_move(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
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

    def _act_delete(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
        task = self._pick_task(user, statuses=("New", "Opened"))
        if task is None or task.timers:
            return False
        task.project.open_tasks.remove(task)
        task.deleted = True
        self._emit_task(company, "task_deleted", user, task)
        return True
