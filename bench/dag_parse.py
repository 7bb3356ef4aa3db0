"""DAG file parse time of the dbt DAG: LoadMode.DBT_MANIFEST vs LoadMode.DBT_LS, same run.

    python bench/dag_parse.py --repeats 5

DBT_MANIFEST is dags/orangescrum_dbt.py as shipped, rendered from a prebuilt manifest: by
default one built for this run by `orangescrum airflow manifest` into the scratch folder, so it
matches the project as it is (`--manifest PATH` uses an existing one). DBT_LS is the same DAG
(same configs from orangescrum/airflow_support.py) rendered by running `dbt ls` at parse time,
as Cosmos does by default; its result cache is off so every parse pays for it, as a cold DAG
processor does.

Each file is parsed `--repeats` times with Airflow's DagBag in a process that has already
imported Airflow and Cosmos (as the DAG processor has), and once more in a fresh interpreter
(everything included; printed, not recorded). The target for DBT_MANIFEST is <= 1 s. Not a
test: it prints figures and the machine they were measured on; `--json PATH` also writes them
as a run of bench/results.json's shape (bench/results.py), `--quick` parses each file once and
skips the fresh interpreters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.producer import machine as machine_description  # noqa: E402
from bench.results import (  # noqa: E402
    Figure,
    Target,
    exit_on_sigterm,
    make_figure,
    new_run,
    write_script_run,
)

TARGET_SECONDS = 1.0
QUICK_REPEATS, FULL_REPEATS = 1, 5
MANIFEST_DAG = REPO_ROOT / "dags" / "orangescrum_dbt.py"
DBT_LS_DAG = '''"""Airflow DAG for bench/dag_parse.py: the dbt DAG rendered with LoadMode.DBT_LS."""

from cosmos import DbtDag, InvocationMode, LoadMode, ProjectConfig, RenderConfig, TestBehavior

from orangescrum import airflow_support as support

settings = support.load_settings()

dag = DbtDag(
    project_config=ProjectConfig(
        dbt_project_path=settings.dbt_project_dir,
        project_name=support.DBT_PROJECT_NAME,
        install_dbt_deps=False,
        env_vars=settings.dbt_env(),
    ),
    profile_config=support.profile_config(settings),
    execution_config=support.execution_config(),
    render_config=RenderConfig(
        load_method=LoadMode.DBT_LS,
        invocation_mode=InvocationMode.DBT_RUNNER,
        test_behavior=TestBehavior.AFTER_EACH,
        exclude=["resource_type:exposure"],
        should_detach_multiple_parents_tests=True,
        emit_datasets=False,
    ),
    operator_args=support.dbt_operator_args(settings),
    **support.dag_kwargs(dag_id="orangescrum_dbt_ls", schedule=None, tags=("bench",)),
)
'''


def machine() -> str:
    return f"{machine_description()}, load average {os.getloadavg()[0]:.1f}"


def isolated_airflow(home: Path, manifest: Path) -> None:
    """A throw-away AIRFLOW_HOME, no examples, no telemetry, no dbt ls cache (set before import)."""
    for name in [n for n in os.environ if n.startswith("AIRFLOW__")]:
        del os.environ[name]
    os.environ |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__ENABLE_CACHE_DBT_LS": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "ORANGESCRUM_DATA_DIR": str(home / "state"),
        "ORANGESCRUM_DBT_MANIFEST_PATH": str(manifest),
        # Cosmos looks for a `dbt` executable even when it runs dbt in-process.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


@contextmanager
def silenced() -> Iterator[None]:
    """Mute file descriptors 1 and 2 (dbt ls prints its whole listing)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with Path(os.devnull).open("w") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def parse_once(dag_file: Path) -> tuple[float, int]:
    """Seconds DagBag spent on the file, and the task count of the DAG it found."""
    from airflow.dag_processing.dagbag import DagBag

    with silenced():
        bag = DagBag(dag_folder=str(dag_file))
    if bag.import_errors:
        raise SystemExit(f"{dag_file} failed to import: {bag.import_errors}")
    (stat,) = bag.dagbag_stats
    return stat.duration.total_seconds(), stat.task_num


def parse_cold(dag_file: Path) -> float:
    """Wall time of a fresh interpreter importing Airflow and parsing the file."""
    code = (
        "from airflow.dag_processing.dagbag import DagBag; "
        f"bag = DagBag(dag_folder={str(dag_file)!r}); "
        "assert not bag.import_errors, bag.import_errors"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=REPO_ROOT)
    return time.perf_counter() - started


def build_manifest(destination: Path) -> Path:
    """`orangescrum airflow manifest` in a fresh interpreter (dbt stays out of this process)."""
    print("building the dbt manifest (dbt parse) ...", flush=True)
    code = "import sys; from orangescrum.cli import main; sys.argv[0] = 'orangescrum'; main()"
    built = subprocess.run(
        [sys.executable, "-c", code, "airflow", "manifest"],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=os.environ | {"ORANGESCRUM_DBT_MANIFEST_PATH": str(destination)},
    )
    if built.returncode != 0:
        raise SystemExit(f"`orangescrum airflow manifest` failed:\n{built.stdout}{built.stderr}")
    return destination


# (load mode, tasks, first, median, max parse seconds, fresh-interpreter seconds or None)
Row = tuple[str, int, float, float, float, float | None]


def figures_of(rows: list[Row]) -> list[Figure]:
    """The run's figures in bench/results.json's shape: DBT_MANIFEST median vs DBT_LS median."""
    tasks, manifest_median, ls_median = rows[0][1], rows[0][3], rows[1][3]
    return [
        make_figure(
            "dag_parse.manifest_median",
            manifest_median,
            "s",
            reference=("LoadMode.DBT_LS median", ls_median),
            target=Target(TARGET_SECONDS, at_most=True, unit="s"),
            note=f"DagBag parse of the Cosmos dbt DAG ({tasks} tasks), Airflow already imported",
        )
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"warm parses per load mode (default {FULL_REPEATS}; --quick {QUICK_REPEATS})",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="an existing manifest.json (default: build one for this run)",
    )
    parser.add_argument(
        "--fresh-interpreter",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time one parse per load mode in a new Python, imports included (printed, "
        "not recorded; default on, --quick off)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one parse per load mode, no fresh-interpreter parses",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else FULL_REPEATS)
    if args.fresh_interpreter is None:
        args.fresh_interpreter = not args.quick
    run = new_run(quick=args.quick)
    exit_on_sigterm()

    with tempfile.TemporaryDirectory(prefix="orangescrum-bench-") as scratch:
        home = Path(scratch)
        manifest = args.manifest.resolve() if args.manifest else home / "manifest.json"
        isolated_airflow(home, manifest)
        if not args.manifest:
            build_manifest(manifest)
        from orangescrum.airflow_support import require_manifest

        require_manifest(manifest)
        dbt_ls_dag = home / "dags" / "orangescrum_dbt_ls.py"
        dbt_ls_dag.parent.mkdir()
        dbt_ls_dag.write_text(DBT_LS_DAG)

        print(f"machine:  {machine()}")
        print(f"manifest: {manifest}")
        warm_up = time.perf_counter()
        with silenced():
            import cosmos  # noqa: F401  (what a DAG processor already has in memory)
            from airflow.dag_processing.dagbag import DagBag  # noqa: F401

            import orangescrum.airflow_support  # noqa: F401

        print(f"importing Airflow + Cosmos once: {time.perf_counter() - warm_up:.2f}s\n")

        rows: list[Row] = []
        for mode, dag_file in (("DBT_MANIFEST", MANIFEST_DAG), ("DBT_LS", dbt_ls_dag)):
            runs = [parse_once(dag_file) for _ in range(args.repeats)]
            seconds = [duration for duration, _ in runs]
            rows.append(
                (
                    mode,
                    runs[0][1],
                    seconds[0],
                    statistics.median(seconds),
                    max(seconds),
                    parse_cold(dag_file) if args.fresh_interpreter else None,
                )
            )

    print(
        f"{'load mode':<14}{'tasks':>6}{'first':>9}{'median':>9}{'max':>9}"
        f"{'fresh interpreter':>20}   (DagBag seconds, {args.repeats} parses)"
    )
    for mode, tasks, first, median, worst, cold in rows:
        fresh = "-" if cold is None else f"{cold:.2f}"
        print(f"{mode:<14}{tasks:>6}{first:>9.2f}{median:>9.2f}{worst:>9.2f}{fresh:>20}")
    manifest_median = rows[0][3]
    verdict = "met" if manifest_median <= TARGET_SECONDS else "MISSED"
    print(
        "\nfirst: first parse in this process (for DBT_LS it includes importing dbt); median/max:"
        "\nall parses; fresh interpreter: a new Python importing Airflow, then parsing. The"
        "\nDBT_MANIFEST DAG has one task more: source_freshness, which dbt_dag() adds."
    )
    print(
        f"\nDBT_MANIFEST median {manifest_median:.2f}s vs target <= {TARGET_SECONDS:.0f}s: "
        f"{verdict}; DBT_LS median {rows[1][3]:.2f}s ({rows[1][3] / manifest_median:.0f}x), "
        f"first parse {rows[1][2]:.2f}s vs {rows[0][2]:.2f}s."
    )
    if args.json:
        write_script_run(args.json, run, figures_of(rows))


if __name__ == "__main__":
    main()
