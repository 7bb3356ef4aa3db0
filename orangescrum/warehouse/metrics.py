"""The semantic layer: MetricFlow (`mf`) on the dbt project, with this platform's settings.

The metrics are defined once in dbt_project/models/marts/_marts__metrics.yml; this module runs
MetricFlow's own CLI against the same project, profile and warehouse as `orangescrum dbt`, so
`orangescrum metrics query` and `mf query` run from dbt_project/ give the same numbers.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from orangescrum.core.errors import OrangeScrumError
from orangescrum.core.settings import Settings
from orangescrum.warehouse.dbt import run_dbt

log = logging.getLogger(__name__)

# What the `mf` script runs (MetricFlow's own CLI), less one import. jsonschema, which dbt
# imports, imports rfc3987-syntax whenever it is installed (jupyter-events' jsonschema extra
# installs it), and that compiles 39 Lark grammars at import, a large share of each `mf query`
# process's CPU, for IRI format checks neither dbt nor MetricFlow ever asks jsonschema for.
# A None in sys.modules makes that import fail, which jsonschema expects and skips.
MF_MAIN = (
    "import sys; sys.modules['rfc3987_syntax'] = None; sys.argv[0] = 'mf'; "
    "from dbt_metricflow.cli.main import cli; sys.exit(cli())"
)


def mf_executable() -> Path:
    """The `mf` script installed beside this interpreter (dbt-metricflow)."""
    script = Path(sys.executable).parent / "mf"
    if not script.exists():
        raise OrangeScrumError(
            f"MetricFlow's `mf` is not installed beside {sys.executable}: run `make setup`."
        )
    return script


def run_metricflow(
    settings: Settings, args: Sequence[str], *, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    """`mf <args>` from the dbt project folder, with the settings' profile and target
    (MetricFlow's CLI as the `mf` script runs it: MF_MAIN).

    MetricFlow reads the semantic manifest from the project's own target folder
    (dbt_project/target: it ignores DBT_TARGET_PATH), so the project is parsed there first;
    partial parsing keeps that to a few seconds.
    """
    # run_dbt also refuses a warehouse another process holds, before mf would meet it.
    run_dbt(settings, ["parse"], quiet=True)
    env = os.environ | settings.dbt_env()
    env.pop("DBT_TARGET_PATH", None)
    mf_executable()  # installed beside this interpreter, or one sentence saying so
    command = [sys.executable, "-c", MF_MAIN, *args]
    log.info("mf %s", " ".join(args))
    result = subprocess.run(
        command,
        cwd=settings.dbt_project_dir,
        env=env,
        capture_output=capture,
        text=True,
        check=False,
    )
    # mf can exit 0 having found problems; its summary lines count them ("ERRORS: 2").
    failed = result.returncode != 0 or bool(
        capture and re.search(r"\bERRORS: [1-9]", result.stdout + result.stderr)
    )
    if failed:
        detail = (result.stdout + result.stderr)[-2000:] if capture else "see its output above"
        raise OrangeScrumError(f"`mf {' '.join(args)}` failed: {detail}")
    return result


def query_metrics(
    settings: Settings,
    metrics: Sequence[str],
    group_by: Sequence[str] = (),
    *,
    where: Sequence[str] = (),
    order: Sequence[str] = (),
) -> list[dict[str, str]]:
    """Rows of `mf query` (values as MetricFlow writes them to CSV)."""
    with tempfile.TemporaryDirectory(prefix="orangescrum-mf-") as scratch:
        csv_file = Path(scratch) / "result.csv"
        args = ["query", "--metrics", ",".join(metrics), "--csv", str(csv_file), "--quiet"]
        if group_by:
            args += ["--group-by", ",".join(group_by)]
        for condition in where:
            args += ["--where", condition]
        if order:
            args += ["--order", ",".join(order)]
        run_metricflow(settings, args, capture=True)
        with csv_file.open(newline="") as rows:
            return list(csv.DictReader(rows))
