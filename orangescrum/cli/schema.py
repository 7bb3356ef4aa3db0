"""`orangescrum schema check|register`: the Avro event contract and its registry."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer
from avro.errors import AvroException

from ingestion.compatibility import CompatibilityMode
from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError

schema_app = typer.Typer(help="The Avro event contract and its schema registry.")


@schema_app.command("check")
def schema_check(
    candidate: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="A new .avsc to check against the latest version."
        ),
    ] = None,
    mode: Annotated[
        CompatibilityMode | None,
        typer.Option(case_sensitive=False, help="Default: the mode in registry.json."),
    ] = None,
) -> None:
    """Check every shipped schema version (or a candidate) against its predecessor.

    With ORANGESCRUM_SCHEMA_REGISTRY_URL set, the candidate (else the newest shipped version) is
    also tested by that registry against the latest version it holds, under its own rule.
    """
    from ingestion.compatibility import compatibility_problems, registry_mode
    from orangescrum.core.contract.schema import SCHEMA_DIR, available_versions, load_schema_text

    chosen = mode or registry_mode((SCHEMA_DIR / "registry.json").read_text())
    versions = available_versions()
    pairs = [
        (f"v{old}", load_schema_text(old), f"v{new}", load_schema_text(new))
        for old, new in itertools.pairwise(versions)
    ]
    if candidate is not None:
        pairs = [
            (
                f"v{versions[-1]}",
                load_schema_text(versions[-1]),
                str(candidate),
                candidate.read_text(),
            )
        ]
    failures = 0
    for old_name, old_text, new_name, new_text in pairs:
        try:
            problems = compatibility_problems(old_text, new_text, chosen)
        except (ValueError, AvroException) as error:
            # Avro's parse errors subclass neither; a broken file is the user's to fix.
            raise OrangeScrumError(
                f"{new_name} is not a valid Avro record schema ({error}): fix the file and "
                "run the check again"
            ) from None
        status = "compatible" if not problems else "INCOMPATIBLE"
        console.print(f"{old_name} -> {new_name} ({chosen.value}): {status}")
        for problem in problems:
            console.print(f"  {problem}")
        failures += bool(problems)
    # The registry verdict is printed before a local failure stops the command: both help.
    refused_by = _registry_verdict(*pairs[-1][2:]) if pairs else None
    if failures:
        raise OrangeScrumError(
            f"{failures} schema change(s) break {chosen.value} compatibility: give new or "
            "removed fields a default instead of changing or deleting them"
        )
    if refused_by:
        raise OrangeScrumError(
            f"the schema registry at {refused_by} would refuse {pairs[-1][2]} under its "
            "compatibility rule for the subject: give new or removed fields a default"
        )


def _registry_verdict(name: str, text: str) -> str | None:
    """Print what the configured HTTP registry says of `text` as the subject's next version;
    its URL when it would refuse it, None otherwise (or when no registry URL is set)."""
    from orangescrum.core.contract.registry import ConfluentSchemaRegistry
    from orangescrum.core.contract.schema import SUBJECT

    settings = load_settings()
    url = settings.schema_registry_url
    if not url:
        return None
    registry = ConfluentSchemaRegistry(url, settings.schema_registry_basic_auth.get_secret_value())
    verdict = registry.compatible(SUBJECT, text)
    if verdict is None:
        console.print(
            f"{name} at {url}: {SUBJECT} has no version there yet, nothing to test",
            soft_wrap=True,
        )
        return None
    # soft_wrap: a URL broken over two lines cannot be copied.
    console.print(
        f"{name} against the latest {SUBJECT} at {url}: "
        + ("compatible" if verdict else "INCOMPATIBLE"),
        soft_wrap=True,
    )
    return None if verdict else url


@schema_app.command("register")
def schema_register() -> None:
    """Register every shipped version, oldest first, in the configured schema registry."""
    from orangescrum.core.contract.registry import register_contract, registry_for
    from orangescrum.core.contract.schema import SUBJECT

    settings = load_settings()
    registry = registry_for(
        settings.schema_registry_url, settings.schema_registry_basic_auth.get_secret_value()
    )
    where = settings.schema_registry_url or "orangescrum/core/contract/schemas/registry.json"
    for version, schema_id in register_contract(registry).items():
        console.print(f"{SUBJECT} v{version}: id {schema_id} ({where})")
