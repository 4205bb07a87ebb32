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
from collections.abc import Sequence
from pathlib import Path

from lrsched_pl import jobs

# One job per module: report_runs reads the runs, report_rows aggregates them into configurations, report_tables
# writes the table (Markdown, CSV, terminal), report_figures the figures; this one joins them and is the CLI (its
# docstring is the --help text).
from lrsched_pl.report_figures import FIGURES, write_figures
from lrsched_pl.report_rows import (
    BASELINE,
    REACH_DEFINITION,
    Report,
    Row,
    Stat,
    assign_baselines,
    flag_incomplete,
    is_branch_sweep,
    rows_of,
    shorten,
    sort_rows,
)
from lrsched_pl.report_runs import METRICS, EmptySweepError, Run, collect, expected_jobs, load_run
from lrsched_pl.report_tables import COLUMNS, markdown, print_table, write_csv, write_jobs_only

__all__ = [  # what the report's users import from here (the benchmarks, the sweep's summary, the tests)
    "BASELINE", "COLUMNS", "FIGURES", "METRICS", "REACH_DEFINITION", "EmptySweepError", "Report", "Row", "Run",
    "Stat", "collect", "expected_jobs", "load_run", "main", "write_report",
]  # fmt: skip


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
        return write_jobs_only(Report(sweep_dir, metric, out / "report.md", out / "report.csv", [], [], missing, [],
                                       [], None))  # fmt: skip
    rows = rows_of(runs)
    if is_branch_sweep(rows):  # cooldown branches differ in length on purpose; branch_report compares them
        incomplete, common = flag_incomplete(rows, lengths=False), shorten(rows)
        no_baseline = "cooldown branches are compared by their total steps (the Cooldown branches section)"
    else:
        incomplete, no_baseline, common = flag_incomplete(rows), assign_baselines(rows), shorten(rows)
    sort_rows(rows, metric)
    report = Report(sweep_dir, metric, out / "report.md", out / "report.csv", [out / f"{n}.png" for n in FIGURES],
                    rows, missing, incomplete, common, no_baseline)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_figures(report)
    report.markdown.write_text(markdown(report))
    write_csv(report)
    from lrsched_pl.branch_report import add_branches

    add_branches(report)  # a sweep of cooldown branches: their final metrics against total steps (lrsched-branch)
    if console:
        print_table(report)
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
