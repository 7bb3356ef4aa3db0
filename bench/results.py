"""The benchmark record shared by every bench script, bench/run_all.py and bench/report.py.

A run (one `bench/run_all.py`, or one script with `--json PATH`):

    {"date": "2026-11-29T07:00:00+00:00",          UTC, when the run started
     "machine": {"cpu", "cores", "ram_gib", "os", "python"},
     "commit": "<git sha>", "dirty": bool,          the working tree had uncommitted changes
     "quick": bool,                                 --quick: about a tenth of the volume
     "load_average": {"start": [1, 5, 15 min], "end": [...]},
     "notes": [str],                                steps that failed, and why
     "figures": [Figure, ...]}

A figure: {"name", "value", "unit", "reference_name", "reference_value", "ratio", "target",
"met", "note"}. value is null when the measurement did not finish (note says why); reference_*
and ratio (value / reference_value) are null when the figure has no peer; target is "" and met
null when it has no target. bench/results.json is a list of runs, oldest first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO_ROOT / "bench" / "results.json"
RUN_KEYS = ("date", "machine", "commit", "dirty", "quick", "load_average", "notes", "figures")
FIGURE_KEYS = (
    "name",
    "value",
    "unit",
    "reference_name",
    "reference_value",
    "ratio",
    "target",
    "met",
    "note",
)


class Figure(TypedDict):
    name: str
    value: float | None
    unit: str
    reference_name: str | None
    reference_value: float | None
    ratio: float | None
    target: str
    met: bool | None
    note: str | None


@dataclass(frozen=True)
class Target:
    """A bound on a figure's value, or (on_ratio) on its ratio to the reference."""

    bound: float
    at_most: bool
    on_ratio: bool = False
    unit: str = ""

    @property
    def text(self) -> str:
        operator = "<=" if self.at_most else ">="
        if self.on_ratio:
            return f"ratio {operator} {self.bound:g}"
        return f"{operator} {self.bound:g} {self.unit}".rstrip()

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        measured = ratio if self.on_ratio else value
        if measured is None:
            return None
        return measured <= self.bound if self.at_most else measured >= self.bound


def _rounded(number: float | None) -> float | None:
    """Six significant digits: more would be noise, and the JSON stays readable."""
    return None if number is None else float(f"{number:.6g}")


def make_figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    reference: tuple[str, float | None] | None = None,
    target: Target | None = None,
    note: str | None = None,
) -> Figure:
    """One figure; ratio and met are derived from the value, the reference and the target."""
    reference_name, reference_value = reference if reference else (None, None)
    ratio = value / reference_value if value is not None and reference_value else None
    return Figure(
        name=name,
        value=_rounded(value),
        unit=unit,
        reference_name=reference_name,
        reference_value=_rounded(reference_value),
        ratio=_rounded(ratio),
        target=target.text if target else "",
        met=target.met(value, ratio) if target else None,
        note=note,
    )


# --- the run ------------------------------------------------------------------------------------
def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def ram_gib() -> float:
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return 0.0
    kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
    return round(kib / 1024**2, 1)


def machine_info() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "ram_gib": ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _git(*args: str) -> str:
    # --no-optional-locks: never take the index lock another git command may be holding.
    completed = subprocess.run(
        ["git", "--no-optional-locks", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() if completed.returncode == 0 else ""


def git_state() -> tuple[str, bool]:
    """(HEAD commit or "unknown", whether the working tree has uncommitted changes)."""
    return _git("rev-parse", "HEAD") or "unknown", bool(_git("status", "--porcelain"))


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run(*, quick: bool, date: str | None = None) -> dict[str, Any]:
    """A run with no figures yet; date defaults to now, load_average.end is set by finish_run."""
    commit, dirty = git_state()
    return {
        "date": date or utc_now(),
        "machine": machine_info(),
        "commit": commit,
        "dirty": dirty,
        "quick": quick,
        "load_average": {"start": load_average(), "end": []},
        "notes": [],
        "figures": [],
    }


def finish_run(run: dict[str, Any]) -> dict[str, Any]:
    run["load_average"]["end"] = load_average()
    return run


def exit_on_sigterm() -> None:
    """SIGTERM (run_all's time limit, a CI cancel) unwinds like Ctrl-C, so a script's finally
    blocks run: its broker stops and its scratch folder goes."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def write_json_atomically(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(document, indent=2) + "\n")
    scratch.replace(path)


def write_script_run(
    path: Path, run: dict[str, Any], figures: list[Figure], notes: list[str] | None = None
) -> None:
    """What a bench script's --json writes: its run (from new_run at its start), its figures."""
    run["figures"] = figures
    run["notes"] = notes or []
    write_json_atomically(path, finish_run(run))


# --- validation and the results file ------------------------------------------------------------
def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def figure_problems(figure: Any) -> list[str]:
    if not isinstance(figure, dict) or set(figure) != set(FIGURE_KEYS):
        return [f"figure {figure!r}: keys must be {', '.join(FIGURE_KEYS)}"]
    name = figure["name"]
    checks = {
        "name": isinstance(name, str) and bool(name),
        "unit": isinstance(figure["unit"], str),
        "target": isinstance(figure["target"], str),
        "value": _number_or_none(figure["value"]),
        "reference_value": _number_or_none(figure["reference_value"]),
        "ratio": _number_or_none(figure["ratio"]),
        "reference_name": figure["reference_name"] is None
        or isinstance(figure["reference_name"], str),
        "met": figure["met"] is None or isinstance(figure["met"], bool),
        "note": figure["note"] is None or isinstance(figure["note"], str),
    }
    return [f"figure {name!r}: bad {key}" for key, ok in checks.items() if not ok]


def _is_utc_iso(text: Any) -> bool:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return False
    return moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0


def run_problems(run: Any) -> list[str]:
    """Everything that keeps `run` from having the shape described at the top; [] if none."""
    if not isinstance(run, dict) or set(run) != set(RUN_KEYS):
        return [f"run: keys must be {', '.join(RUN_KEYS)}"]
    problems = [] if _is_utc_iso(run["date"]) else ["run: date must be UTC ISO 8601"]
    machine = run["machine"]
    if not isinstance(machine, dict) or set(machine) != {"cpu", "cores", "ram_gib", "os", "python"}:
        problems.append("run: machine must have cpu, cores, ram_gib, os, python")
    if not isinstance(run["commit"], str) or not isinstance(run["dirty"], bool):
        problems.append("run: commit must be a string, dirty a bool")
    if not isinstance(run["quick"], bool):
        problems.append("run: quick must be a bool")
    if not isinstance(run["notes"], list) or not isinstance(run["figures"], list):
        problems.append("run: notes and figures must be lists")
        return problems
    for figure in run["figures"]:
        problems += figure_problems(figure)
    return problems


def load_runs(path: Path) -> list[dict[str, Any]]:
    """The recorded runs (oldest first); [] when the file does not exist yet."""
    if not path.exists():
        return []
    runs = json.loads(path.read_text())
    if not isinstance(runs, list):
        raise ValueError(f"{path} holds {type(runs).__name__}, not a list of runs")
    return runs


def append_run(path: Path, run: dict[str, Any]) -> int:
    """Add `run` to the history in `path`; how many runs it holds now."""
    problems = run_problems(run)
    if problems:
        raise ValueError("refusing to record a malformed run: " + "; ".join(problems))
    runs = [*load_runs(path), run]
    write_json_atomically(path, runs)
    return len(runs)


# --- formatting shared by run_all's table and the report ----------------------------------------
def format_number(number: float | None, unit: str = "") -> str:
    if number is None:
        return "-"
    magnitude = abs(number)
    text = f"{number:,.0f}" if magnitude >= 100 else f"{number:.1f}" if magnitude >= 10 else ""
    text = text or f"{number:.2f}"
    return f"{text} {unit}".rstrip()


def format_met(met: bool | None) -> str:
    return "-" if met is None else "yes" if met else "no"


def size_label(events: int) -> str:
    """100_000 -> 100k, 10_000_000 -> 10M: stable figure names for requested sizes."""
    for divisor, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if events >= divisor and events % divisor == 0:
            return f"{events // divisor}{suffix}"
    return str(events)


def add_run_arguments(parser: argparse.ArgumentParser, *, keep_help: str) -> None:
    """--results, --json, --logs and --keep: where a process-running bench (soak.py, cdc.py)
    records its run and keeps its children's output."""
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_FILE,
        help="JSON history the run is appended to (default bench/results.json)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="write the run to this file instead of appending it to --results "
        "(bench/run_all.py does)",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        help="folder for the children's output and samples.jsonl (default: a new temp "
        "folder, kept)",
    )
    parser.add_argument("--keep", action="store_true", help=keep_help)


@contextlib.contextmanager
def scratch_and_logs(args: argparse.Namespace, name: str) -> Iterator[tuple[Path, Path]]:
    """A process-running bench's scratch folder (removed afterwards unless --keep) and its logs
    folder (--logs, or a new temporary one; always kept)."""
    logs = args.logs or Path(tempfile.mkdtemp(prefix=f"orangescrum-{name}-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"orangescrum-{name}-"))
    try:
        yield scratch, logs
    finally:
        if args.keep:
            logging.getLogger(name).info("scratch kept: %s", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
