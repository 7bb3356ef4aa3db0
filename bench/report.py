"""Write docs/BENCHMARKS.md and one chart per figure from the runs in bench/results.json.

    python bench/report.py                 # bench/results.json -> docs/BENCHMARKS.md
    python bench/report.py --results R --docs D.md

The markdown holds the latest full run (the latest quick run when no full run is recorded):
its machine and commit, and a table of figure, value, reference, ratio, target and met; then,
for figures that run did not measure (e.g. a soak, bench/soak.py, recorded on its own), the
same for the earlier run that last measured them. The
charts (PNG, matplotlib's Agg backend) go to benchmarks/ beside the markdown, one per figure,
over every recorded run of the same kind (full or quick: their volumes differ); charts of
figures no longer measured are removed. bench/run_all.py calls this at its end.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import REPO_ROOT, RESULTS_FILE, format_met, format_number, load_runs

DOCS_FILE = REPO_ROOT / "docs" / "BENCHMARKS.md"
CHART_FOLDER = "benchmarks"
TARGET_PATTERN = re.compile(r"^(?P<ratio>ratio )?(?P<op><=|>=) (?P<bound>[0-9.eE+-]+)")


@dataclass(frozen=True)
class Bound:
    """A target as a line on a chart: on the value or on the ratio."""

    value: float
    on_ratio: bool


def parse_target(text: str) -> Bound | None:
    match = TARGET_PATTERN.match(text)
    if not match:
        return None
    return Bound(float(match["bound"]), on_ratio=bool(match["ratio"]))


# --- which runs ---------------------------------------------------------------------------------
def reported_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The full runs, or the quick ones when no full run is recorded (oldest first)."""
    full = [run for run in runs if not run["quick"]]
    return full or [run for run in runs if run["quick"]]


def series(runs: list[dict[str, Any]], name: str) -> list[tuple[str, dict[str, Any] | None]]:
    """(run date, the figure `name` in that run or None) for every run."""
    return [
        (run["date"], next((f for f in run["figures"] if f["name"] == name), None)) for run in runs
    ]


def chart_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png"


# --- charts -------------------------------------------------------------------------------------
MET_STYLE = {True: ("tab:green", "o"), False: ("tab:red", "X"), None: ("tab:gray", "o")}


def _plot_line(axes: Any, points: list[tuple[int, float, bool | None]], label: str) -> None:
    axes.plot([x for x, _, _ in points], [y for _, y, _ in points], color="tab:blue", lw=1)
    for x, y, met in points:
        color, marker = MET_STYLE[met]
        axes.plot(x, y, marker=marker, color=color, markersize=5, linestyle="none")
    axes.set_title(label, fontsize=8)


def _date_ticks(axes: Any, dates: list[str]) -> None:
    step = max(1, len(dates) // 6)
    positions = list(range(0, len(dates), step))
    axes.set_xticks(positions, [dates[i][:16].replace("T", "\n") for i in positions])
    axes.tick_params(labelsize=7)
    axes.set_xlim(-0.5, len(dates) - 0.5)
    axes.grid(alpha=0.3)


def write_chart(name: str, runs: list[dict[str, Any]], path: Path) -> None:
    """Value (and reference, dotted) over the runs; the ratio beside it when there is a
    reference; the target as a dashed line on the panel it bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(i, f, f["value"]) for i, (_, f) in enumerate(series(runs, name)) if f]
    measured = [(i, value, f["met"]) for i, f, value in points if value is not None]
    references = [(i, f["reference_value"]) for i, f, _ in points if f["reference_value"]]
    ratios = [(i, f["ratio"], f["met"]) for i, f, _ in points if f["ratio"] is not None]
    latest = points[-1][1] if points else {"unit": "", "target": ""}
    bound = parse_target(latest["target"])
    dates = [run["date"] for run in runs]
    panels = 2 if references else 1
    figure, axes_list = plt.subplots(1, panels, figsize=(3.4 * panels, 2.3), squeeze=False)
    value_axes = axes_list[0][0]
    _plot_line(value_axes, measured, f"value ({latest['unit']})")
    if not measured:
        value_axes.text(0.5, 0.5, "not measured", ha="center", transform=value_axes.transAxes)
    if references:
        value_axes.plot(
            [x for x, _ in references],
            [y for _, y in references],
            color="tab:gray",
            linestyle=":",
            marker=".",
            label=latest.get("reference_name") or "reference",
        )
        value_axes.legend(fontsize=6, loc="best")
        _plot_line(axes_list[0][1], ratios, "ratio value / reference")
    if bound:
        bounded = axes_list[0][1] if bound.on_ratio and references else value_axes
        bounded.axhline(bound.value, color="tab:orange", linestyle="--", lw=1)
    for axes in axes_list[0]:
        _date_ticks(axes, dates)
        axes.set_ylim(bottom=0)  # throughput and time from zero: changes at their true scale
    figure.suptitle(f"{name}   target: {latest['target'] or 'none'}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def figure_names(runs: list[dict[str, Any]]) -> list[str]:
    """Every figure name in the runs, in the order of their latest appearance."""
    names: dict[str, None] = {}
    for run in reversed(runs):
        for figure in run["figures"]:
            names.setdefault(figure["name"], None)
    latest = [f["name"] for f in runs[-1]["figures"]] if runs else []
    return latest + [name for name in names if name not in latest]


def write_charts(runs: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per figure in `folder`; stale PNGs there (figures gone) are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in figure_names(runs):
        path = folder / chart_file_name(name)
        write_chart(name, runs, path)
        written.append(path)
    for stale in set(folder.glob("*.png")) - set(written):
        stale.unlink()
    return written


# --- markdown -----------------------------------------------------------------------------------
def machine_line(run: dict[str, Any]) -> str:
    machine, load = run["machine"], run["load_average"]
    tree = " (working tree with uncommitted changes)" if run["dirty"] else ""
    start, end = (load.get(key) or ["?"] for key in ("start", "end"))
    return (
        f"{run['date']}, commit `{run['commit'][:12]}`{tree}; {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['ram_gib']} GiB RAM, {machine['os']}, "
        f"Python {machine['python']}; load average {start[0]} at the start, {end[0]} at the end."
    )


def figure_row(figure: dict[str, Any]) -> str:
    reference = "-"
    if figure["reference_name"]:
        known = format_number(figure["reference_value"], figure["unit"])
        reference = f"{figure['reference_name']}: {known}"
    value = format_number(figure["value"], figure["unit"])
    cells = (
        f"`{figure['name']}`",
        value if figure["value"] is not None else "not measured (see notes)",
        reference,
        format_number(figure["ratio"]),
        figure["target"] or "-",
        format_met(figure["met"]),
    )
    return "| " + " | ".join(cells) + " |"


def latest_section(
    run: dict[str, Any], runs: list[dict[str, Any]], figures: list[dict[str, Any]] | None = None
) -> list[str]:
    """The latest run's machine and figures; with `figures`, an earlier run's, those of its
    figures no later run measured (a soak on its own, bench/soak.py, measures only its own)."""
    kind = "full run" if not run["quick"] else "run (quick: a tenth of the volume)"
    if figures is None:
        full = sum(not r["quick"] for r in runs)
        counts = f"Runs recorded: {len(runs)} ({full} full, {len(runs) - full} quick)."
        heading = [f"## Latest {kind}", "", machine_line(run), counts]
    else:
        heading = [f"## Earlier {kind}: figures not measured since", "", machine_line(run)]
    figures = run["figures"] if figures is None else figures
    lines = [
        *heading,
        "",
        "| figure | value | reference | ratio | target | met |",
        "|---|---:|---|---:|---|---|",
        *(figure_row(figure) for figure in figures),
        "",
    ]
    notes = [f"- `{f['name']}`: {f['note']}" for f in figures if f["note"]]
    notes += [f"- {note}" for note in run["notes"]]
    return [*lines, "Notes:", "", *notes, ""] if notes else lines


def earlier_figures(
    shown: list[dict[str, Any]],
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(run, its figures no later run measured), newest first, for the runs before the latest
    that hold such figures: the latest value of every figure stays in the report."""
    seen = {figure["name"] for figure in shown[-1]["figures"]}
    groups = []
    for run in reversed(shown[:-1]):
        figures = [figure for figure in run["figures"] if figure["name"] not in seen]
        if figures:
            groups.append((run, figures))
        seen |= {figure["name"] for figure in run["figures"]}
    return groups


def history_section(runs: list[dict[str, Any]], charts: list[Path], docs: Path) -> list[str]:
    kind = "quick" if runs[-1]["quick"] else "full"
    lines = [
        "## History",
        "",
        f"Each figure over the {plural(len(runs), f'{kind} run')} recorded: its value (the "
        "reference dotted), the ratio beside it when it has a reference, the target dashed; "
        "green met, red missed, grey no target.",
        "",
    ]
    for chart in charts:
        link = Path(os.path.relpath(chart, docs.parent)).as_posix()
        lines += [f"![{chart.stem}]({link})", ""]
    return lines


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def render(runs: list[dict[str, Any]], charts: list[Path], docs: Path, results: Path) -> str:
    shown = reported_runs(runs)
    header = [
        "# Benchmarks",
        "",
        f"Generated by `python bench/report.py` from `{display(results)}` (`make bench` runs "
        "every benchmark, appends the run there and then regenerates this file): do not edit "
        "by hand. What each figure measures and how: `bench/README.md`.",
        "",
    ]
    if not shown:
        return "\n".join([*header, "No runs recorded yet: run `make bench`.", ""])
    body = latest_section(shown[-1], runs)
    for run, figures in earlier_figures(shown):
        body += latest_section(run, runs, figures)
    body += history_section(shown, charts, docs)
    return "\n".join(header + body)


def display(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def generate(results: Path, docs: Path) -> list[Path]:
    """Rewrite `docs` and its charts from `results`; the files written (markdown first)."""
    runs = load_runs(results)
    charts = write_charts(reported_runs(runs), docs.parent / CHART_FOLDER) if runs else []
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(render(runs, charts, docs, results))
    return [docs, *charts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Charts go to benchmarks/ beside the markdown file.",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_FILE,
        help="run history to read (default bench/results.json)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=DOCS_FILE,
        help="markdown file to write (default docs/BENCHMARKS.md)",
    )
    arguments = parser.parse_args(argv)
    written = generate(arguments.results, arguments.docs)
    print(f"wrote {written[0]} and {len(written) - 1} charts in {written[0].parent / CHART_FOLDER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
