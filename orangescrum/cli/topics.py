"""`orangescrum topics ...`: the events and dead-letter topics."""

from __future__ import annotations

import typer

from orangescrum.cli.common import console, load_settings

topics_app = typer.Typer(help="Kafka topics.")


@topics_app.command("create")
def topics_create() -> None:
    """Create the events and dead-letter topics (no-op for topics that exist)."""
    from orangescrum.core.broker import require_broker
    from orangescrum.core.topics import create_topics

    settings = load_settings()
    require_broker(settings)
    for topic, outcome in create_topics(settings).items():
        console.print(f"{topic}: {outcome}")
