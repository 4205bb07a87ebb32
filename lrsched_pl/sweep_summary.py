"""The end of a sweep, in words: how many jobs finished, failed, were interrupted or never started, the best job
(and ``best_job.yaml``), the report, the TensorBoard command and, for a sweep that did not finish, the command that
continues it.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lrsched_pl import jobs

BEST_FILE = "best_job.yaml"
_LISTED = 10  # jobs listed per status in the summary


def best_result(results: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The completed job with the best finite objective value (``direction``: minimize or maximize)."""
    completed = [r for r in results if r.get("status") == jobs.COMPLETED]
    scored = [r for r in completed if math.isfinite(jobs.number(r.get("value")) or math.nan)]
    if not scored:
        return None
    pick = min if direction == "minimize" else max
    return pick(scored, key=lambda r: float(r["value"]))


def summary(config: DictConfig, results: list[dict[str, Any]], head: str, report: bool, continuable: bool) -> str:
    """The summary's lines under ``head`` (``Sweep finished``, ``Sweep interrupted (SIGTERM)``); writes
    ``best_job.yaml`` and, with ``report``, the report.

    Args:
        config: The sweep's config (``hydra.sweep.dir``, ``objective``, ``objective_direction``).
        results: Every job with its status (:func:`lrsched_pl.jobs.statuses`).
        head: What became of the sweep.
        report: Write the comparison report (:mod:`lrsched_pl.report`) into ``<sweep dir>/report``.
        continuable: The sweep can be continued in place (a grid): say how when some job did not finish.
    """
    sweep_dir = Path(str(config.hydra.sweep.dir))
    counts = {status: [r for r in results if r["status"] == status] for status in jobs.SHOWN}
    lines = [f"{head}: {jobs.tally(results)}, in {sweep_dir}"]
    for status in (jobs.FAILED, jobs.INTERRUPTED, jobs.RUNNING, jobs.NOT_STARTED):
        lines += [f"  {jobs.SHOWN[status]}: {job_line(r)}" for r in counts[status][:_LISTED]]
        if len(counts[status]) > _LISTED:
            lines.append(f"  ... and {len(counts[status]) - _LISTED} more {jobs.SHOWN[status]}")
    direction = str(config.get("objective_direction", "minimize"))
    best = best_result(results, direction)
    if best is not None:
        lines.append(f"Best ({direction} {best['objective']}): {job_line(best)}")
        lines.append(f"  its config: {_write_best(sweep_dir, best, direction)}")
    if report:
        lines += _report_lines(sweep_dir, str(config.get("objective", "val/loss")))
    lines.append(f"TensorBoard: tensorboard --logdir {sweep_dir}")
    if len(counts[jobs.COMPLETED]) < len(results) and continuable:
        lines.append(f"Continue it: {_same_command(sweep_dir)}")
    return "\n".join(lines)


def job_line(result: dict[str, Any]) -> str:
    """A job in one line: ``#<num> <name>``, with its objective value or error and its time once it ended."""
    overrides = result.get("name") or "(defaults)"
    status = result.get("status")
    if status == jobs.FAILED:
        outcome = f"FAILED {result.get('error')}"
    elif status == jobs.COMPLETED:
        value = jobs.number(result.get("value"))
        outcome = f"{result['objective']}={value:.4g}" if value is not None else f"{result['objective']}=n/a"
    else:
        return f"#{result['num']} {overrides}"
    seconds = result.get("seconds")
    return f"#{result['num']} {overrides}  {outcome}" + (f"  job time {seconds:.1f} s" if seconds is not None else "")


def _same_command(sweep_dir: Path) -> str:
    """This command line, with its ``hydra.sweep.dir`` (added when the default, timestamped one was used)."""
    args = [a for a in sys.argv[1:] if not a.startswith("hydra.sweep.dir=")]
    return shlex.join([Path(sys.executable).name, sys.argv[0], *args, f"hydra.sweep.dir={sweep_dir}"])


def _write_best(sweep_dir: Path, best: dict[str, Any], direction: str) -> Path:
    """``<sweep>/best_job.yaml``: the best job's overrides, objective and the whole config it ran with."""
    config_path = Path(best["dir"]) / ".hydra" / "config.yaml"
    entry = {key: best[key] for key in ("overrides", "objective", "value", "dir")}
    entry["direction"] = direction
    entry["config"] = OmegaConf.load(config_path) if config_path.is_file() else None
    path = sweep_dir / BEST_FILE
    OmegaConf.save(OmegaConf.create(entry), path)
    return path


def _report_lines(sweep_dir: Path, objective: str) -> list[str]:
    """Writes the comparison report; a failure to do so is printed, never raised (the jobs' results stand)."""
    try:
        from lrsched_pl.report import METRICS, write_report

        report = write_report(sweep_dir, metric=objective if objective in METRICS else "val/loss", console=False)
    except Exception as error:  # noqa: BLE001 - the sweep is done; say why the report is missing, do not fail it
        return [f"Report: not written ({jobs.error_line(error)}); try: python -m lrsched_pl.report {sweep_dir}"]
    lines = [f"Report: {report.markdown} (table: {report.csv}; figures: {', '.join(p.name for p in report.figures)})"]
    return lines + [f"  missing from the report: {entry}" for entry in report.missing]
