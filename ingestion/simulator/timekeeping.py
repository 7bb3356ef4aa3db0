"""Time tracking: timers, manual time entries and their approval by managers."""

from __future__ import annotations

from ingestion.simulator.clock import MINUTE, SECOND, ceil_s, floor_s
from ingestion.simulator.core import SimulatorCore
from ingestion.simulator.payloads import time_log
from ingestion.simulator.state import Company, TimeEntry, User
from ingestion.simulator.tuning import (
    BILLABLE_SHARE,
    HISTORY_END_MARGIN,
    MIN_TIMER,
    REJECT_SHARE,
)


class TimeActions(SimulatorCore):
    """Timers and time entries; a running timer pins its task (no move or delete under it)."""

    def _act_timer(self, company: Company, user: User, window: tuple[int, int] | None) -> bool:
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
            limit = min(window[1], self.h_end - HISTORY_END_MARGIN) - start
            if limit < MIN_TIMER:
                return False
            due = start + min(rng.randint(20 * MINUTE, 180 * MINUTE), limit)
        else:
            return False  # history actions always run inside a session
        entry = TimeEntry(
            time_log_id=next(self._ids["time_log"]),
            user=user,
            task=task,
            started_us=floor_s(start),
            is_billable=rng.random() < BILLABLE_SHARE,
        )
        user.running = entry
        task.timers += 1
        # The contract's TimeLog needs an end; a running timer has none yet, so the start event
        # carries no time_log and the matching timer_stopped (same user, same task) carries it.
        self._emit(company, "timer_started", user, task.project, task)
        self._push(company, due, "timer_stop", user, target=entry)
        return True

    def _stop_early(self, company: Company, user: User, entry: TimeEntry) -> bool:
        """Stop a running timer by hand, before its planned stop (which then does nothing)."""
        if self.live_rate is not None or company.clock - entry.started_us < MIN_TIMER // 3:
            return False  # live content must not hinge on the wall clock
        self._finish_timer(company, user, entry)
        return True

    def _stop_timer(self, company: Company, user: User, due: int, entry: TimeEntry) -> None:
        if user.running is not entry:
            return  # already stopped by hand
        self._at(company, due)
        self._finish_timer(company, user, entry)

    def _finish_timer(self, company: Company, user: User, entry: TimeEntry) -> None:
        entry.ended_us = floor_s(company.clock)
        # Only a live caller outrunning its own rate stops a timer within the second it began;
        # the entry then starts a second early rather than ending in the future.
        entry.started_us = min(entry.started_us, entry.ended_us - SECOND)
        user.running = None
        entry.task.timers -= 1
        self._emit(
            company,
            "timer_stopped",
            user,
            entry.task.project,
            entry.task,
            time_log=time_log(entry),
        )
        company.approvals.append(entry)

    def _act_log_time(self, company: Company, user: User, window: tuple[int, int] | None) -> bool:
        """A manual entry for work done earlier in the session (after the task existed)."""
        rng = self.rng
        task = self._pick_task(user, closed=rng.random() < 0.2) or self._pick_task(user)
        if task is None:
            return False
        ended = floor_s(company.clock) - rng.randint(0, 30) * MINUTE
        started = ended - rng.randint(15, 150) * MINUTE
        if self.live_rate is None:
            floor = max(task.created_us, user.created_us, self.h_start, window[0] if window else 0)
            started = max(started, ceil_s(floor))
            if ended - started < 5 * MINUTE:
                return False
        # Live mode skips those bounds: checking them against the wall clock would make the
        # stream's content depend on the caller's pace, so live entries may predate the task.
        entry = TimeEntry(
            time_log_id=next(self._ids["time_log"]),
            user=user,
            task=task,
            started_us=started,
            ended_us=ended,
            is_billable=rng.random() < BILLABLE_SHARE,
        )
        self._emit(company, "time_logged", user, task.project, task, time_log=time_log(entry))
        company.approvals.append(entry)
        return True

    def _act_approve(self, company: Company, user: User, _: tuple[int, int] | None) -> bool:
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
            rejected = self.rng.random() < REJECT_SHARE
            entry.approval_status = "rejected" if rejected else "approved"
            event_type = "time_entry_rejected" if rejected else "time_entry_approved"
            self._emit(company, event_type, user, project, entry.task, time_log=time_log(entry))
            decided += 1
            if decided == 3:
                break
        return decided > 0
