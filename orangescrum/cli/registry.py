"""`orangescrum registry build|start`: the local HTTP schema registry (Apicurio Registry)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from orangescrum.cli.common import console, load_settings
from orangescrum.core.errors import OrangeScrumError

if TYPE_CHECKING:
    from pathlib import Path

    from orangescrum.core.apicurio.server import LocalSchemaRegistry

registry_app = typer.Typer(
    help="The local schema registry: Apicurio Registry (Confluent-compatible API), built from "
    "Maven Central."
)


def build_with_status(jar_cache_dir: Path) -> Path:
    """quarkus-run.jar, built the first time behind a status line that names the log."""
    from orangescrum.core.apicurio.build import (
        apicurio_version,
        build_log,
        build_registry,
        is_built,
    )

    if is_built(jar_cache_dir):
        return build_registry(jar_cache_dir)
    started = time.monotonic()
    with console.status(
        f"building Apicurio Registry {apicurio_version()} with Maven (about a minute the first "
        f"time; log: {build_log(jar_cache_dir)})"
    ):
        jar = build_registry(jar_cache_dir)
    console.print(
        f"built Apicurio Registry {apicurio_version()} in {time.monotonic() - started:.0f} s"
    )
    return jar


@registry_app.command("build")
def registry_build() -> None:
    """Build the registry into the jar cache (once; `orangescrum jars fetch` does it too)."""
    from orangescrum.core.apicurio.build import apicurio_version

    settings = load_settings()
    jar = build_with_status(settings.jar_cache_dir)
    console.print(f"Apicurio Registry {apicurio_version()}: {jar}", soft_wrap=True)


@registry_app.command("start")
def registry_start(
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Port on 127.0.0.1. Default: the one it last used if free, else a free one.",
        ),
    ] = None,
) -> None:
    """Run the registry in the foreground until Ctrl-C/SIGTERM; subjects and ids are kept."""
    from orangescrum.core.apicurio.server import LocalSchemaRegistry

    settings = load_settings()
    build_with_status(settings.jar_cache_dir)
    registry = LocalSchemaRegistry.from_settings(settings, port)
    with console.status("starting Apicurio Registry"):
        registry.start()
    try:
        console.print(_started(registry), soft_wrap=True, markup=False, highlight=False)
        while (code := registry.exit_code()) is None:
            time.sleep(0.5)
        raise OrangeScrumError(
            f"The schema registry exited with code {code}; see {registry.log_file}."
        )
    finally:
        registry.stop()


def _started(registry: LocalSchemaRegistry) -> str:
    return "\n".join(
        [
            f"Apicurio Registry on {registry.url} (compatibility {registry.compatibility}; "
            f"data: {registry.directory}, log: {registry.log_file}).",
            "In other terminals:",
            f"  export ORANGESCRUM_SCHEMA_REGISTRY_URL={registry.url}",
            "  orangescrum schema register",
            "Ctrl-C stops it; subjects, versions and ids are kept for the next start.",
        ]
    )
