"""The report's table: ``report.md``, ``report.csv`` and the terminal table (rich), one row per configuration."""

from __future__ import annotations

import csv
import os
import textwrap
from pathlib import Path

from lrsched_pl import jobs
from lrsched_pl.report_rows import REACH_DEFINITION, Report, Row
from lrsched_pl.report_runs import METRICS

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


def markdown(report: Report) -> str:
    """``report.md``: the table, what its columns mean, the missing and incomplete jobs, the figures."""
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


def write_jobs_only(report: Report) -> Report:
    """``report.md`` (what became of each job) and an empty ``report.csv``, for a sweep without a ``val/loss``."""
    report.markdown.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Sweep report: `{report.sweep_dir}`", "", "No job has logged `val/loss`: nothing to compare yet.",
             *_jobs_line(report.sweep_dir), "",
             "## Missing", "", *(f"- {item}" for item in report.missing), ""]  # fmt: skip
    report.markdown.write_text("\n".join(lines))
    write_csv(report)
    return report


def write_csv(report: Report) -> None:
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


def print_table(report: Report) -> None:
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
