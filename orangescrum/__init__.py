"""OrangeScrum Analytics: the shared core (settings, CLI, local services, warehouse glue)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
