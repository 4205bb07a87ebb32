"""The report's four figures (matplotlib, drawn with Agg): every run's LR, ``val/loss`` and ``val/acc`` over epochs
(mean ± std over seeds), and the final metric per configuration. One colour per configuration in all four."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from lrsched_pl.report_rows import BASELINE, Report, Row
from lrsched_pl.report_runs import split_overrides

FIGURES = ["lr", "val_loss", "val_acc", "final_metric"]


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
    return textwrap.fill(", ".join(split_overrides(row.short)), 44, break_long_words=False)


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


def write_figures(report: Report) -> None:
    """Writes ``report.figures`` (in the order of :data:`FIGURES`) into their directory, which must exist."""
    colours = _colours(report.rows)
    _plot_lr(report, colours, report.figures[0])
    _plot_curves(report, "val/loss", colours, report.figures[1])
    _plot_curves(report, "val/acc", colours, report.figures[2])
    _plot_final(report, colours, report.figures[3])
