"""What to simulate; kept apart from the drivers so the engine can read it without a cycle."""

from __future__ import annotations

import datetime
from dataclasses import dataclass


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
