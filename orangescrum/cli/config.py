"""`orangescrum config show|env-example`: the settings in effect."""

from __future__ import annotations

import sys

import typer

from orangescrum.cli.common import load_settings
from orangescrum.core.settings import effective_values, env_example

config_app = typer.Typer(help="Settings.")


@config_app.command("show")
def config_show() -> None:
    """Print every setting as in effect (derived defaults resolved, secrets masked)."""
    for name, value in effective_values(load_settings()).items():
        sys.stdout.write(f"ORANGESCRUM_{name.upper()}={value}\n")


@config_app.command("env-example")
def config_env_example() -> None:
    """Print .env.example (every setting with its default and meaning)."""
    sys.stdout.write(env_example())
