"""Compare the runs of a Hydra sweep: a table (Markdown, CSV, terminal) and four figures.

    python -m lrsched_pl.report outputs/multirun/2026-11-23/14-57-00                # -> <sweep>/report/
    python -m lrsched_pl.report outputs/multirun/2026-11-23/14-57-00 --metric val/acc --out report

It reads each job's TensorBoard events (``lr-<Optimizer>``, ``val/loss``, ``val/acc``, ``epoch``, HPARAMS). A
configuration is a job's overrides without ``seed=`` (and ``ckpt_path=``); its seeds are aggregated as mean ± sample
std (ddof=1). A sweep still running, stopped, or with failed jobs, is reported as far as it got, with what is missing
and why (the job records of :mod:`lrsched_pl.jobs`: failed, interrupted, not started).
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import statistics
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lrsched_pl import jobs

METRICS = {"val/loss": min, "val/acc": max}  # metric -> how a run's best is picked (max: higher is better)
BASELINE = "constant"
FIGURES = ["lr", "val_loss", "val_acc", "final_metric"]
REACH_DEFINITION = (
    "**Epochs to baseline best**: the baseline is the `constant` configuration (without a plateau) with the same "
    "optimizer (and LR, where one matches), else the first one; its best is the minimum over epochs of its "
    "seed-mean `val/loss` curve. A configuration's value is the first epoch (1-based, from the logged `epoch`) at "
    'which its seed-mean `val/loss` is ≤ that best, or "not reached". A seed mean at an epoch averages the seeds '
    "that reached it."
)


class EmptySweepError(ValueError):
    """A sweep directory without any job to report."""


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))

    def __str__(self) -> str:
        return f"{self.mean:.4f}" + (f" ± {self.std:.4f}" if self.n > 1 else "")


@dataclass
class Run:
    """One job: its overrides (``config``: sorted, without ``seed=``), HPARAMS and curves.

    ``curves`` holds ``(1-based epoch, value)`` per validation for each of :data:`METRICS` logged, ``lr``
    ``(optimizer step, lr)`` per ``lr-*`` tag, ``wall_s`` its training time: the seconds from its first to its last
    event.
    """

    name: str
    overrides: tuple[str, ...]
    config: tuple[str, ...]
    hparams: dict[str, Any]
    curves: dict[str, list[tuple[int, float]]]
    lr: dict[str, list[tuple[int, float]]]
    wall_s: float
    outcome: str | None = None  # "failed (<error>)" or "interrupted" when its job's record says so


@dataclass
class Row:
    """One configuration: its runs (one per seed) and their :class:`Stat` per metric."""

    label: str  # the overrides without seed=, sorted and joined by ",", or "(defaults)"
    schedule: str
    schedule_params: str
    optimizer: str
    lr: float | None
    runs: list[Run]
    final: dict[str, Stat]
    best: dict[str, Stat]
    wall_s: float
    notes: list[str] = field(default_factory=list)
    baseline: str | None = None  # the label of its baseline; None when the sweep has none
    epochs_to_baseline: int | None = None  # None: not reached, or no baseline
    short: str = ""  # the label without the overrides every configuration has

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def is_baseline(self) -> bool:
        return self.schedule == BASELINE and "| plateau:" not in self.schedule_params

    def mean_curve(self, metric: str) -> tuple[list[int], list[float], list[float]]:
        """``(epochs, mean, std)`` over the seeds at each validation, each point over the seeds that reached it."""
        curves = [r.curves.get(metric, []) for r in self.runs]
        points = [[c[k] for c in curves if len(c) > k] for k in range(max(map(len, curves)))]
        stats = [Stat.of([v for _, v in p]) for p in points]
        return [p[0][0] for p in points], [s.mean for s in stats], [s.std for s in stats]


@dataclass
class Report:
    """What :func:`write_report` found and wrote; ``rows`` sorted by the final ``metric``, best first.

    ``missing`` has a line per job without results (no event file, no ``val/loss``, no directory),
    ``incomplete`` one per run with fewer validations than the longest, ``common`` the overrides every
    configuration has (left out of the short labels), ``no_baseline`` why epochs-to-baseline is n/a.
    """

    sweep_dir: Path
    metric: str
    markdown: Path
    csv: Path
    figures: list[Path]
    rows: list[Row]
    missing: list[str]
    incomplete: list[str]
    common: list[str]
    no_baseline: str | None


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _split(joined: str) -> list[str]:
    """``a=1,b=[2,3]`` -> ``["a=1", "b=[2,3]"]``: overrides joined by "," as in Hydra's ``override_dirname``."""
    return re.split(r",(?=[^,=\[\]]+=)", joined)


def _job_overrides(job_dir: Path, hparams: dict[str, Any]) -> tuple[str, ...]:
    """The job's overrides: ``.hydra/overrides.yaml``, else its directory name, else its HPARAMS."""
    path = job_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        return tuple(str(o) for o in yaml.safe_load(path.read_text()) or [])
    parts = _split(job_dir.name)
    return tuple(parts) if all("=" in p for p in parts) else tuple(f"{k}={v}" for k, v in sorted(hparams.items()))


def _hparams(acc: Any, job_dir: Path) -> dict[str, Any]:
    """The run's HPARAMS (session start info), else its ``hparams.yaml``."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:  # written without HPARAMS
        content = {}
    for raw in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            return {k: getattr(v, v.WhichOneof("kind")) for k, v in data.session_start_info.hparams.items()}
    path = job_dir / "hparams.yaml"
    return dict(yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def load_run(job_dir: Path) -> Run:
    """Reads the event files directly in one job directory.

    Raises:
        ValueError: Saying why the job has nothing to report (no event file, no ``val/loss`` yet, unreadable).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not any(job_dir.glob("events.out.tfevents.*")):
        raise ValueError("no event file yet")
    # "No path found after ..." for every run; "Detected out of order event.step": a resumed run's purge_step at work
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    acc = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})
    try:
        acc.Reload()  # skips a truncated last record by itself
    except Exception as err:  # noqa: BLE001 - corrupt files raise several kinds; report the job, do not crash
        raise ValueError(f"unreadable event file ({type(err).__name__}: {err})") from err
    tags = acc.Tags()["scalars"]
    if "val/loss" not in tags:
        raise ValueError("no val/loss logged yet")
    scalars = {tag: acc.Scalars(tag) for tag in tags}
    epoch_at = {e.step: int(e.value) for e in scalars.get("epoch", [])}
    hparams = _hparams(acc, job_dir)
    overrides = _job_overrides(job_dir, hparams)
    return Run(
        name=job_dir.name,
        overrides=overrides,
        config=tuple(sorted(o for o in overrides if _key(o) not in ("seed", "ckpt_path"))),
        hparams=hparams,
        curves={m: [(epoch_at.get(e.step, k) + 1, e.value) for k, e in enumerate(scalars[m])] for m in METRICS
                if m in scalars},  # fmt: skip
        lr={t: [(e.step, e.value) for e in s] for t, s in scalars.items()
            if t.startswith("lr-") and "momentum" not in t},  # fmt: skip
        wall_s=max(e.wall_time for s in scalars.values() for e in s) - acc.FirstEventTimestamp(),
    )


def expected_jobs(sweep_dir: Path) -> list[tuple[str, ...]] | None:
    """The overrides of every job of a basic (grid) sweep, expanded from ``multirun.yaml`` by Hydra's BasicSweeper.

    Returns:
        ``None`` for other sweepers (Optuna decides its jobs as it goes) or without ``multirun.yaml``.

    Raises:
        ValueError: When Hydra cannot expand the overrides (e.g. ``glob(...)``, which needs the config).
    """
    path = sweep_dir / "multirun.yaml"
    hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra", {}) if path.is_file() else {}
    sweeper = hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]  # what BasicSweeper.sweep prepends
    task = params + list((hydra.get("overrides") or {}).get("task") or [])
    try:
        batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(task), max_batch_size=None)
    except Exception as err:  # noqa: BLE001 - Hydra's parser raises its own exception types
        raise ValueError(f"could not expand the sweep's overrides {task} ({err})") from err
    return [tuple(job) for batch in batches for job in batch]


def _is_job(path: Path) -> bool:
    return path.is_dir() and ((path / ".hydra").is_dir() or any(path.glob("events.out.tfevents.*")))


def _outcome(record: dict[str, Any]) -> str:
    """What a job record says about a job the report has no curves of."""
    status = record.get("status")
    if status == jobs.FAILED:
        return f"failed ({record.get('error')})"
    return jobs.SHOWN.get(status, str(status))


def collect(sweep_dir: Path) -> tuple[list[Run], list[str]]:
    """Every run with a ``val/loss`` in ``sweep_dir``, and a line for each job that has none or has no directory.

    A job the sweep recorded (``results/<n>.yaml``, ``jobs.yaml``) is named with its status: failed (with its
    error), interrupted, not started. Without records, the jobs of a grid come from ``multirun.yaml``.

    Raises:
        EmptySweepError: When ``sweep_dir`` holds neither a job directory (one with ``.hydra/`` or an event file)
            nor a job record.
    """
    job_dirs = [d for d in sorted(sweep_dir.iterdir()) if _is_job(d)] if sweep_dir.is_dir() else []
    records = {Path(str(r.get("dir") or r.get("subdir"))).name: r for r in jobs.statuses(sweep_dir)}
    if not job_dirs and not records:
        raise EmptySweepError(f"no sweep jobs in {sweep_dir} (expected sub-directories with .hydra/ or events)")
    runs, missing = [], []
    for job_dir in job_dirs:
        record = records.get(job_dir.name)
        try:
            runs.append(load_run(job_dir))
            if record and record.get("status") in (jobs.FAILED, jobs.INTERRUPTED):
                runs[-1].outcome = _outcome(record)  # its curves up to the failure are in the table
        except ValueError as err:
            missing.append(f"{job_dir.name}: {_outcome(record) + '; ' if record else ''}{err}")
    seen = {d.name for d in job_dirs}
    if records:
        missing += [f"{name}: {_outcome(r)}, no job directory" for name, r in records.items() if name not in seen]
        return runs, missing
    try:
        expected = expected_jobs(sweep_dir) or []
    except ValueError as err:
        expected, missing = [], [*missing, f"jobs without a directory not checked: {err}"]
    seen_overrides = {frozenset(_job_overrides(d, {})) for d in job_dirs}
    missing += [f"{','.join(sorted(job))}: not started, no job directory"
                for job in expected if frozenset(job) not in seen_overrides]  # fmt: skip
    return runs, missing


def _seed_stats(runs: list[Run], pick: Callable[[str, list[float]], float]) -> dict[str, Stat]:
    """Per metric, the :class:`Stat` over runs of ``pick(metric, the run's values)``."""
    values = {m: [pick(m, [v for _, v in r.curves[m]]) for r in runs if r.curves.get(m)] for m in METRICS}
    return {m: Stat.of(v) for m, v in values.items() if v}


def _row(runs: list[Run]) -> Row:
    hp = runs[0].hparams
    return Row(
        label=",".join(runs[0].config) or "(defaults)",
        schedule=str(hp.get("schedule", "?")),
        schedule_params=str(hp.get("schedule_params", "")),
        optimizer=str(hp.get("optimizer", "?")),
        lr=float(hp["lr"]) if "lr" in hp else None,
        runs=runs,
        final=_seed_stats(runs, lambda m, values: values[-1]),
        best=_seed_stats(runs, lambda m, values: METRICS[m](values)),
        wall_s=statistics.fmean(r.wall_s for r in runs),
    )


def _flag_incomplete(rows: list[Row]) -> list[str]:
    """Notes each run with fewer validations than the sweep's longest, or whose job failed or was interrupted;
    returns a line per such run."""
    n = max(len(run.curves["val/loss"]) for row in rows for run in row.runs)
    lines = []
    for row in rows:
        for run in (run for run in row.runs if run.outcome):
            row.notes.append(f"{next((o for o in run.overrides if _key(o) == 'seed'), run.name)} {run.outcome}")
            lines.append(f"{run.name}: {run.outcome}")
        for run in (run for run in row.runs if len(run.curves["val/loss"]) < n):
            seed = next((o for o in run.overrides if _key(o) == "seed"), run.name)
            row.notes.append(f"{seed} incomplete ({len(run.curves['val/loss'])} of {n} epochs)")
            lines.append(f"{run.name}: incomplete ({len(run.curves['val/loss'])} of {n} epochs)")
    return lines


def _assign_baselines(rows: list[Row]) -> str | None:
    """Sets each row's baseline and epochs to reach its best ``val/loss`` (:data:`REACH_DEFINITION`).

    Returns:
        Why there is no baseline, or ``None``.
    """
    constants = [row for row in rows if row.is_baseline]
    if not constants:
        return f"the sweep has no `{BASELINE}` configuration without a plateau (add `schedule={BASELINE}` to it)"
    for row in rows:
        base = max(constants, key=lambda b: (b.optimizer == row.optimizer, b.lr == row.lr))  # the first of ties
        target = min(base.mean_curve("val/loss")[1])
        epochs, means, _ = row.mean_curve("val/loss")
        row.baseline = base.label
        row.epochs_to_baseline = next((e for e, v in zip(epochs, means) if v <= target), None)
        if "baseline" not in base.notes:
            base.notes.insert(0, "baseline")
    return None


def _shorten(rows: list[Row]) -> list[str]:
    """Sets each row's ``short`` label to its overrides not shared by all rows; returns the shared ones."""
    configs = [row.runs[0].config for row in rows]
    common = set.intersection(*map(set, configs)) if len(rows) > 1 else set()
    for row, config in zip(rows, configs):
        row.short = ",".join(o for o in config if o not in common) or "(defaults)"
    return sorted(common)


COLUMNS = ["configuration", "schedule", "parameters", "optimizer", "lr", "seeds",
           *(f"{which} {m}" for m in METRICS for which in ("final", "best")),
           "epochs to baseline best", "training time (s)", "notes"]  # fmt: skip


def _reach(row: Row) -> str:
    if row.baseline is None:
        return "n/a"
    return "not reached" if row.epochs_to_baseline is None else str(row.epochs_to_baseline)


def _cells(row: Row) -> list[str]:
    """The row's cells, in the order of :data:`COLUMNS`."""
    stats = [str(s[m]) if m in s else "–" for m in METRICS for s in (row.final, row.best)]
    lr = "?" if row.lr is None else f"{row.lr:g}"
    return [row.short, row.schedule, row.schedule_params, row.optimizer, lr, str(row.seeds), *stats,
            _reach(row), f"{row.wall_s:.1f}", "; ".join(row.notes)]  # fmt: skip


def _markdown(report: Report) -> str:
    better = "lower" if METRICS[report.metric] is min else "higher"
    lines = [f"# Sweep report: `{report.sweep_dir}`", "",
             f"{sum(r.seeds for r in report.rows)} runs in {len(report.rows)} configurations, sorted by final "
             f"`{report.metric}` ({better} is better).", *_jobs_line(report.sweep_dir)]  # fmt: skip
    if report.common:
        lines.append(f"Every configuration has {', '.join(f'`{o}`' for o in report.common)} (left out of the labels).")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(row)) + " |" for row in report.rows]
    lines += ["", "**Final**: each run's last validation; **best**: its minimum `val/loss` or maximum `val/acc`; both "
              "as mean ± sample std (ddof=1) over seeds, without ± for one seed. **Training time**: first to last "
              "event of a run, mean over seeds.", "",
              REACH_DEFINITION + (f" **n/a**: {report.no_baseline}." if report.no_baseline else "")]  # fmt: skip
    for title, items in (("Missing", report.missing), ("Incomplete", report.incomplete)):
        lines += ["", f"## {title}", "", *(f"- {item}" for item in items)] if items else []
    return "\n".join([*lines, "", "## Figures", "", *(f"![{p.stem}]({p.name})" for p in report.figures), ""])


def _jobs_line(sweep_dir: Path) -> list[str]:
    """``Jobs: 4 jobs: 2 finished, 1 failed, ...`` from the sweep's records (none for a sweep without them)."""
    records = jobs.statuses(sweep_dir)
    return [f"Jobs: {jobs.tally(records)}."] if records else []


def _write_jobs_only(report: Report) -> Report:
    """``report.md`` (what became of each job) and an empty ``report.csv``, for a sweep without a ``val/loss``."""
    report.markdown.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Sweep report: `{report.sweep_dir}`", "", "No job has logged `val/loss`: nothing to compare yet.",
             *_jobs_line(report.sweep_dir), "",
             "## Missing", "", *(f"- {item}" for item in report.missing), ""]  # fmt: skip
    report.markdown.write_text("\n".join(lines))
    _write_csv(report)
    return report


def _write_csv(report: Report) -> None:
    stat_columns = [f"{which}_{m.replace('/', '_')}_{s}" for m in METRICS for which in ("final", "best")
                    for s in ("mean", "std")]  # fmt: skip
    with open(report.csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "schedule", "schedule_params", "optimizer", "lr", "seeds", *stat_columns,
                         "epochs_to_baseline_best", "baseline", "training_time_s", "notes"])  # fmt: skip
        for row in report.rows:
            stats = [x for m in METRICS for s in (row.final, row.best) for x in
                     ((s[m].mean, s[m].std) if m in s else ("", ""))]  # fmt: skip
            writer.writerow([row.label, row.schedule, row.schedule_params, row.optimizer, row.lr, row.seeds, *stats,
                             _reach(row), row.baseline or "", row.wall_s, "; ".join(row.notes)])  # fmt: skip


def _colours(rows: list[Row]) -> dict[str, Any]:
    """One colour per configuration, in label order: the same in every figure, whatever the sort."""
    from matplotlib import colormaps

    labels = sorted(row.label for row in rows)
    n = len(labels)
    cmap = colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"]
    return {label: cmap(i if n <= 20 else i / (n - 1)) for i, label in enumerate(labels)}


def _axes(title: str, xlabel: str, ylabel: str, height: float = 4.2) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # a bare Figure draws with Agg and leaves pyplot's backend alone
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, height), dpi=110)
    ax = fig.subplots()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and epochs
    return fig, ax


def _save(fig: Any, ax: Any, path: Path, entries: int) -> None:
    """Adds a legend of ``entries`` lines (below the axes in two columns when many) and writes the PNG."""
    if entries > 5:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    elif entries:
        ax.legend(fontsize=8)
    fig.savefig(path, bbox_inches="tight")


def _name(row: Row) -> str:
    """The short label for a legend or an axis, wrapped between overrides."""
    return textwrap.fill(", ".join(_split(row.short)), 44, break_long_words=False)


def _plot_lr(report: Report, colours: dict[str, Any], path: Path) -> None:
    fig, ax = _axes(f"Learning rate of every run ({report.sweep_dir.name})", "optimizer step", "learning rate")
    entries, values = 0, []
    for row in report.rows:
        label = _name(row)
        for run in row.runs:
            for j, (tag, points) in enumerate(sorted(run.lr.items())):
                steps, lrs = zip(*points)
                ax.plot(steps, lrs, color=colours[row.label], ls=["-", "--", ":", "-."][j % 4], alpha=0.8, label=label)
                values += [v for v in lrs if v > 0]
                entries += label is not None
                label = None
    if values and max(values) / min(values) >= 20:  # decays over orders of magnitude read better on a log axis
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    if any(len(run.lr) > 1 for row in report.rows for run in row.runs):
        ax.set_title(ax.get_title() + "\nline style: param group")
    _save(fig, ax, path, entries)


def _plot_curves(report: Report, metric: str, colours: dict[str, Any], path: Path) -> None:
    rows = [row for row in report.rows if metric in row.final]
    bases = {row.baseline for row in rows} - {None} if metric == "val/loss" else set()
    note = "\ndotted: best of the constant baseline" if bases else ""
    fig, ax = _axes(f"{metric}: mean ± std over seeds ({report.sweep_dir.name}){note}", "epoch", metric)
    for row in rows:
        epochs, mean, std = row.mean_curve(metric)
        colour = colours[row.label]
        ax.plot(epochs, mean, color=colour, marker="o" if len(epochs) <= 30 else None, ms=3, label=_name(row))
        ax.fill_between(epochs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=colour, alpha=0.18, lw=0)  # fmt: skip
    for base in bases:
        ax.axhline(min(next(r for r in rows if r.label == base).mean_curve(metric)[1]), color=colours[base], ls=":")
    if metric.endswith("loss"):
        ax.set_yscale("log")  # the first epochs' loss would flatten the part where schedules differ
    _save(fig, ax, path, len(rows))


def _plot_final(report: Report, colours: dict[str, Any], path: Path) -> None:
    from matplotlib.ticker import AutoLocator

    metric = report.metric
    rows = [row for row in report.rows if metric in row.final]
    height = max(2.5, 1.4 + 0.42 * len(rows))
    fig, ax = _axes(f"Final {metric} per configuration, best at the top (hatched: {BASELINE})",
                    f"final {metric} (mean ± std over seeds)", "", height)  # fmt: skip
    stats = [row.final[metric] for row in rows]
    bars = ax.barh(range(len(rows)), [s.mean for s in stats], xerr=[s.std for s in stats], capsize=3,
                   color=[colours[r.label] for r in rows])  # fmt: skip
    for y, (bar, row, stat) in enumerate(zip(bars, rows, stats)):
        if row.is_baseline:
            bar.set(hatch="//", edgecolor="black")
        ax.text(stat.mean + stat.std, y, f"  {stat}", va="center", fontsize=8)  # beyond the error bar
    ax.xaxis.set_major_locator(AutoLocator())
    ax.set_yticks(range(len(rows)), labels=[_name(r) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.25)
    _save(fig, ax, path, 0)


def _print(report: Report) -> None:
    """The table on the terminal (fewer columns on a narrow one), what is missing, where the files are."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:  # a log or a pipe: 80 columns would fold every cell
        console.width = 200
    narrow = console.width < 150
    narrow_hidden = {"schedule", "optimizer", "lr", "best val/acc", "training time (s)"}
    hidden = {"parameters"} | (narrow_hidden if narrow else set())
    shown = [i for i, c in enumerate(COLUMNS) if c not in hidden]
    table = Table(title=f"{report.sweep_dir}: sorted by final {report.metric}", title_justify="left")
    width = None if narrow else min(50, max(len(row.short) for row in report.rows))
    for i in shown:
        header = textwrap.fill(COLUMNS[i], 12, break_long_words=False)
        table.add_column(header, justify="right" if 4 <= i <= 11 else "left", min_width=width if i == 0 else None,
                         overflow="fold")  # fmt: skip
    for row in report.rows:
        cells = _cells(row)
        table.add_row(*(Text(cells[i]) for i in shown), style="bold" if row.is_baseline else None)
    console.print(table)
    notes = [f"missing: {m}" for m in report.missing] + [f"incomplete: {m}" for m in report.incomplete]
    for line in notes + ([f"epochs to baseline best n/a: {report.no_baseline}"] if report.no_baseline else []):
        console.print(Text(line, style="yellow"))
    console.print(Text(f"Wrote {report.markdown}, {report.csv.name} and {', '.join(p.name for p in report.figures)} "
                       f"in {report.markdown.parent}"))  # fmt: skip


def write_report(
    sweep_dir: str | Path, out_dir: str | Path | None = None, metric: str = "val/loss", console: bool = True
) -> Report:
    """Writes ``report.md``, ``report.csv`` and four PNGs comparing the configurations of a Hydra sweep.

    Args:
        sweep_dir: The sweep's directory (``hydra.sweep.dir``): ``multirun.yaml`` and one sub-directory per job.
        out_dir: Where to write; default ``<sweep_dir>/report``.
        metric: The final metric that sorts the table and the bar chart: ``val/loss`` (lower first) or
            ``val/acc`` (higher first).
        console: Also print the table and the paths with rich.

    Returns:
        The :class:`Report`: its rows, the missing jobs, and the paths of ``report.md``, ``report.csv`` and
        ``lr.png``, ``val_loss.png``, ``val_acc.png``, ``final_metric.png``.

    Raises:
        ValueError: For a ``metric`` not in :data:`METRICS`.
        EmptySweepError: When ``sweep_dir`` holds no job, or no job has logged ``val/loss`` yet.

    Example:
        >>> write_report("outputs/multirun/2026-11-23/14-57-00", console=False).rows[0].short  # doctest: +SKIP
        'schedule=cosine'
    """
    if metric not in METRICS:
        raise ValueError(f"`metric` must be one of {', '.join(METRICS)}, got {metric!r}")
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    runs, missing = collect(sweep_dir)
    if not runs and not jobs.read_records(sweep_dir):
        raise EmptySweepError(f"no job in {sweep_dir} has logged val/loss yet: " + "; ".join(missing))
    if not runs:  # a sweep whose jobs all stopped before their first validation: what happened to each
        return _write_jobs_only(Report(sweep_dir, metric, out / "report.md", out / "report.csv", [], [], missing, [],
                                       [], None))  # fmt: skip
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.config, []).append(run)
    rows = [_row(group) for _, group in sorted(groups.items())]
    incomplete, no_baseline, common = _flag_incomplete(rows), _assign_baselines(rows), _shorten(rows)
    sign = 1 if METRICS[metric] is min else -1
    rows.sort(key=lambda r: (metric not in r.final, sign * r.final[metric].mean if metric in r.final else 0.0))
    report = Report(sweep_dir, metric, out / "report.md", out / "report.csv", [out / f"{n}.png" for n in FIGURES],
                    rows, missing, incomplete, common, no_baseline)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    colours = _colours(rows)
    _plot_lr(report, colours, report.figures[0])
    _plot_curves(report, "val/loss", colours, report.figures[1])
    _plot_curves(report, "val/acc", colours, report.figures[2])
    _plot_final(report, colours, report.figures[3])
    report.markdown.write_text(_markdown(report))
    _write_csv(report)
    from lrsched_pl.branch_report import add_branches

    add_branches(report)  # a sweep of cooldown branches: their final metrics against total steps (lrsched-branch)
    if console:
        _print(report)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lrsched_pl.report", description=__doc__,
                                     epilog=REACH_DEFINITION.replace("**", "").replace("`", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="the sweep's directory (hydra.sweep.dir)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write the report (default SWEEP_DIR/report)")
    parser.add_argument("--metric", choices=list(METRICS), default="val/loss",
                        help="the final metric that sorts the table and the bar chart (default val/loss)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        write_report(args.sweep_dir, args.out, args.metric)
    except EmptySweepError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    main()
