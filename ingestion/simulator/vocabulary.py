"""The words and values simulated people write: names, titles, comments, file names.

The tuples' order matters: draws index into them, so reordering changes every history.
"""

from __future__ import annotations

from typing import Final

# A repeated entry is drawn more often; no separate weights keep the draw a plain choice().
TIMEZONES: Final = (
    "Asia/Kolkata",
    "Asia/Kolkata",
    "America/New_York",
    "Europe/Berlin",
    "UTC",
    "Europe/London",
    "America/Los_Angeles",
    "Australia/Sydney",
)
FIRST_NAMES: Final = (
    "Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Sneha", "John", "Emily", "Michael", "Sarah",
    "Lukas", "Anna", "Jonas", "Lea", "Oliver", "Amelia", "Liam", "Chloe", "Mateo", "Sofia",
    "Kenji", "Yuki", "Omar", "Fatima", "Noah", "Grace", "Arjun", "Meera", "Felix", "Hannah",
)  # fmt: skip
LAST_NAMES: Final = (
    "Sharma", "Patel", "Iyer", "Nair", "Mehta", "Smith", "Johnson", "Brown", "Miller", "Davis",
    "Müller", "Schmidt", "Weber", "Fischer", "Wilson", "Taylor", "Garcia", "Lopez", "Tanaka",
    "Khan", "Das", "Rao", "Wagner", "Clarke", "Evans", "Singh", "Kowalski", "Rossi",
)  # fmt: skip
COMPANY_WORDS: Final = (
    "Andolasoft", "Bluepeak", "Cobalt", "Deltaforge", "Evergreen", "Fjord", "Granite", "Helix",
    "Ironbark", "Juniper", "Keystone", "Lumen", "Meridian", "Northwind", "Orchid", "Pinnacle",
)  # fmt: skip
PROJECT_WORDS: Final = (
    "Apollo", "Atlas", "Beacon", "Compass", "Falcon", "Harbor", "Horizon", "Mercury", "Nova",
    "Orbit", "Phoenix", "Quartz", "Summit", "Titan", "Vertex", "Zephyr",
)  # fmt: skip
PROJECT_KINDS: Final = {
    "development": ("Web App", "Mobile App", "API", "Platform"),
    "marketing": ("Website Revamp", "Campaign", "SEO"),
    "support": ("Helpdesk", "Customer Care"),
    "internal": ("Ops", "HR Portal", "Infrastructure"),
}
TASK_VERBS: Final = {
    "bug": ("Fix", "Investigate", "Patch"),
    "development": ("Implement", "Build", "Add"),
    "enhancement": ("Improve", "Speed up", "Polish"),
    "research": ("Evaluate", "Research", "Spike on"),
    "quality_assurance": ("Test", "Write test cases for", "Regression-test"),
    "maintenance": ("Upgrade", "Clean up", "Refactor"),
    "update": ("Update", "Revise", "Document"),
}
TASK_OBJECTS: Final = (
    "login page", "checkout flow", "invoice export", "dashboard widgets", "search results",
    "email notifications", "user onboarding", "billing webhook", "REST API pagination",
    "password reset", "mobile navigation", "report scheduler", "file upload limits",
    "time sheet view", "Gantt chart", "kanban board", "SSO settings", "audit log",
)  # fmt: skip
COMMENTS: Final = (
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
FILE_STEMS: Final = ("screenshot", "spec", "mockup", "invoice", "log", "report", "design")
FILE_EXTENSIONS: Final = ("png", "pdf", "docx", "xlsx", "txt", "zip", "jpg")
ESTIMATES_H: Final = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
STORY_POINTS: Final = (1, 2, 3, 5, 8, 13)
