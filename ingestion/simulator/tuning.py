"""How simulated people behave: working hours, action mix and outcome shares.

Changing any of them changes the output for every seed (a different weight shifts every later
draw), which the golden digests in tests/ingestion/test_simulator_package.py will report.
"""

from __future__ import annotations

from typing import Final

from ingestion.simulator.clock import MINUTE

# Working hours in minutes after local midnight. Shifts start 08:30-10:00 and never run past
# 18:50, so everything a user does lands inside 08:00-19:00 of their own time zone.
EARLIEST_START_MIN: Final = 8 * 60 + 15
LATEST_END_MIN: Final = 18 * 60 + 50
SHIFT_STARTS_MIN: Final = (510, 540, 540, 570, 600)
SHIFT_LENGTHS_MIN: Final = (480, 510, 540)

# A timer needs room to run before the session (or the history) ends; a stopped timer keeps
# this much distance from the end of the history so clock pushes cannot drop its stop event.
MIN_TIMER: Final = 15 * MINUTE
HISTORY_END_MARGIN: Final = 10 * MINUTE

# The status legend as a state machine: where a user may move a task from each status.
STATUS_TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    "New": ("Opened",),
    "Opened": ("Start", "Modified"),
    "Start": ("Resolved", "Modified"),
    "Modified": ("Start",),
    "Resolved": ("Closed", "Opened", "Modified"),
    "Closed": ("Opened",),
}
REOPEN_SHARE: Final = 0.15  # resolved work that bounces back from review
REJECT_SHARE: Final = 0.15  # time entries a manager rejects
BILLABLE_SHARE: Final = 0.7

# Actions per working day: owners and admins spend part of the day managing, clients mostly
# comment and upload.
ACTIVITY: Final = {"owner": 26.0, "admin": 40.0, "member": 54.0, "external": 13.0}

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
ACTION_WEIGHTS: Final[dict[str, dict[str, float]]] = {
    "member": _WORK_ACTIONS,
    "external": {"advance": 5.0, "reopen": 3.0, "update": 8.0, "comment": 50.0, "upload": 25.0},
    "admin": {**_WORK_ACTIONS, **_MANAGER_ACTIONS},
    "owner": {**_WORK_ACTIONS, **_MANAGER_ACTIONS, "role_change": 1.5},
}
# A live stream has no planned chores, so growth and churn come from rare random actions.
LIVE_MANAGER_ACTIONS: Final = {"invite": 0.3, "disable": 0.08, "archive": 0.04}
LIVE_RELOGIN_SHARE: Final = 0.03  # live sessions have no end of day, so some just restart
