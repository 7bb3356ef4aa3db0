"""`orangescrum topics ...`: the events and dead-letter topics, and a look inside any topic."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orangescrum.cli.common import console, load_settings

if TYPE_CHECKING:
    from ingestion.browse import DisplayedMessage, PeekResult

topics_app = typer.Typer(help="Kafka topics: create them, list them, peek into them.")

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
CountOption = Annotated[int, typer.Option(min=1, help="How many messages to show.")]


@topics_app.command("create")
def topics_create() -> None:
    """Create the events and dead-letter topics (no-op for topics that exist)."""
    from orangescrum.core.broker import require_broker
    from orangescrum.core.topics import create_topics

    settings = load_settings()
    require_broker(settings)
    for topic, outcome in create_topics(settings).items():
        console.print(f"{topic}: {outcome}")


@topics_app.command("list")
def topics_list(as_json: JsonOption = False) -> None:
    """Topics on the cluster: partitions, earliest/latest offset of each, messages, retention."""
    from rich.table import Table

    from ingestion.browse import list_topics
    from orangescrum.core.broker import require_broker

    settings = load_settings()
    require_broker(settings)
    topics = list_topics(settings)
    if as_json:
        _emit(
            {"bootstrap": settings.kafka_bootstrap_servers, "topics": [t.to_json() for t in topics]}
        )
        return
    if not topics:
        console.print(f"no topics on {settings.kafka_bootstrap_servers}")
        return
    table = Table(title=f"Topics on {settings.kafka_bootstrap_servers}")
    # One row per partition: offsets stay readable however many partitions a topic has.
    table.add_column("topic", overflow="fold")
    table.add_column("retention", justify="right")
    table.add_column("partition", justify="right")
    table.add_column("earliest", justify="right")
    table.add_column("latest", justify="right")
    table.add_column("messages", justify="right")
    for topic in topics:
        first = [topic.name, _retention(topic.retention_ms)]
        for p in topic.partitions:
            table.add_row(
                *(first or ["", ""]),
                str(p.partition),
                str(p.earliest),
                str(p.latest),
                f"{p.messages:,}",
            )
            first = []
        if len(topic.partitions) > 1:
            table.add_row("", "", "all", "", "", f"{topic.messages:,}", style="bold")
        table.add_section()
    # In a terminal long names fold; piped, each topic stays on one greppable line.
    longest = max(len(topic.name) for topic in topics)
    if console.is_terminal or longest + 64 <= console.width:
        console.print(table)
    else:
        from rich.console import Console

        Console(stderr=True, width=longest + 64).print(table)


@topics_app.command("peek")
def topics_peek(
    topic: Annotated[str, typer.Argument(help="Topic to read, e.g. events-raw.")],
    from_offset: Annotated[
        int | None,
        typer.Option(min=0, help="First offset to read in each partition. Default: earliest."),
    ] = None,
    count: CountOption = 10,
    partition: Annotated[
        int | None, typer.Option(min=0, help="Only this partition. Default: all.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show messages of a topic, Avro decoded through the schema registry; commits nothing.

    Messages come oldest first by Kafka timestamp. One that does not decode is shown with
    the reason; dead letters with the reason in their headers.
    """
    from ingestion.browse import peek
    from orangescrum.core.broker import require_broker

    settings = load_settings()
    require_broker(settings)
    result = peek(settings, topic, count=count, from_offset=from_offset, partition=partition)
    if as_json:
        _emit(result.to_json())
        return
    _print_peek(result)


@topics_app.command("dlq")
def topics_dlq(count: CountOption = 10, as_json: JsonOption = False) -> None:
    """The dead-letter topic: the first messages with their reason, and a count per reason."""
    from rich.table import Table

    from ingestion.browse import dead_letters
    from orangescrum.core.broker import require_broker

    settings = load_settings()
    require_broker(settings)
    report = dead_letters(settings, count=count)
    if as_json:
        _emit(report.to_json())
        return
    _print_peek(report.peek)
    table = Table()
    table.add_column(f"dead letters on {settings.topic_dead_letter}, by reason", overflow="fold")
    table.add_column("messages", justify="right")
    for reason, n in report.reasons.items():
        table.add_row(reason, f"{n:,}")
    table.add_row("total", f"{report.total:,}", style="bold")
    console.print(table)
    if not report.complete:
        console.print("[yellow]note:[/yellow] the count stopped at the timeout; it is partial.")


def _emit(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))


def _print_peek(result: PeekResult) -> None:
    from rich.markup import escape

    for message in result.messages:
        _print_message(message)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True, highlight=False)


def _print_message(message: DisplayedMessage) -> None:
    from rich.markup import escape

    from ingestion.browse import jsonable

    when = message.timestamp.isoformat(timespec="milliseconds") if message.timestamp else "-"
    key = escape(message.key) if message.key is not None else "(none)"
    schema = f"  schema {message.schema_id}" if message.schema_id is not None else ""
    console.print(
        f"[bold]{escape(message.topic)}[/bold] partition {message.partition} "
        f"offset {message.offset}  {when}  key {key}{schema}",
        soft_wrap=True,
        highlight=False,
    )
    letter = message.dead_letter
    if letter is not None:
        source = (
            f" (from {letter.source_topic} partition {letter.source_partition} offset "
            f"{letter.source_offset})"
            if letter.source_topic
            else ""
        )
        detail = f": {letter.detail}" if letter.detail else ""
        console.print(
            f"  [red]dead letter[/red] {escape(letter.reason + detail + source)}",
            soft_wrap=True,
            highlight=False,
        )
    if message.record is not None:
        # Payloads of other event types are null: leave them out of the display.
        shown = {k: v for k, v in jsonable(message.record).items() if v is not None}
        console.print("  " + json.dumps(shown), markup=False, highlight=False, soft_wrap=True)
    elif message.decode_error is not None:
        error = message.decode_error
        preview = f", starts {message.value_preview}" if message.value_preview else ""
        console.print(
            "  [red]not decoded[/red] "
            + escape(f"{error.reason}: {error.detail} ({message.value_size} bytes{preview})"),
            soft_wrap=True,
            highlight=False,
        )


def _retention(retention_ms: int | None) -> str:
    if retention_ms is None:
        return "?"
    if retention_ms < 0:
        return "forever"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if retention_ms % size == 0:
            return f"{retention_ms // size}{unit}"
    return f"{retention_ms}ms"
