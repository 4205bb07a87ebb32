"""What a sweep tells its user: a line per finished job, then the best job, the report and the TensorBoard command.

Hydra calls :class:`SweepSummary` (listed under ``hydra.callbacks`` in ``conf/train.yaml``) around every job and
once after a multirun. ``on_job_end`` runs where the job ran (a joblib worker, a SLURM node), so each job leaves its
outcome in ``<sweep dir>/results/<job number>.yaml`` (also a job refused before its first step, whose own dir
train.py removed) and the summary, on the machine that launched the sweep, reads them back from disk. Hydra skips
``on_multirun_end`` when a job failed (it re-raises the first failure once all jobs ran), so the summary is also
registered to run at exit.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lrsched_pl.errors import ConfigValueError

log = logging.getLogger(__name__)

RESULTS_DIR = "results"
BEST_FILE = "best_job.yaml"
# Environment variables a non-zero rank of a multi-process job carries (Lightning's DDP children, SLURM tasks).
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID")


def _rank_zero() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in _RANK_VARIABLES)


def _number(value: Any) -> float | None:
    """A job's return value as a float (``nan`` included), or ``None`` when it returned no number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """The results of a sweep's finished jobs (``<sweep dir>/results/*.yaml``), ordered by job number."""
    results = [OmegaConf.to_container(OmegaConf.load(path)) for path in (sweep_dir / RESULTS_DIR).glob("*.yaml")]
    return sorted((r for r in results if isinstance(r, dict)), key=lambda r: r.get("num", 0))


def best_result(results: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The completed job with the best finite objective value (``direction``: minimize or maximize)."""
    completed = [r for r in results if r.get("status") == "completed"]
    scored = [r for r in completed if math.isfinite(_number(r.get("value")) or math.nan)]
    if not scored:
        return None
    pick = min if direction == "minimize" else max
    return pick(scored, key=lambda r: float(r["value"]))


class SweepSummary(Callback):
    """Prints one line per finished job of a multirun and, at the end, the best job, the report and TensorBoard.

    Args:
        report: Write ``lrsched_pl.report`` into ``<sweep dir>/report`` when the sweep ends.
    """

    def __init__(self, report: bool = True) -> None:
        self.report = report
        self._started = 0.0
        self._summarized = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Checks the config without the swept values, and the launcher against the trainer, before any job starts.

        Each job checks again with its own values; this catches what every job would fail on before anything is
        launched or queued. Hydra turns a callback's exception into a warning, so an error exits here.
        """
        from lrsched_pl.config import validate
        from lrsched_pl.launch import check_launch

        try:
            validate(config)
            check_launch(config, multirun=True, launcher=config.hydra.get("launcher"))
        except ConfigValueError as error:
            print(f"Error in the sweep's config, no job launched: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        atexit.register(self.on_multirun_end, config)  # Hydra skips on_multirun_end after a failed job

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """In a multirun, writes ``<sweep dir>/results/<n>.yaml`` (status, objective, seconds) and prints it."""
        if config.hydra.mode != RunMode.MULTIRUN or not _rank_zero():  # rank 0 speaks for a DDP or SLURM job
            return
        seconds = time.perf_counter() - self._started
        failed = job_return.status == JobStatus.FAILED
        value = None if failed else _number(job_return.return_value)
        result = {
            "num": int(config.hydra.job.get("num") or 0),
            "name": str(config.hydra.job.override_dirname),  # the job's dir and TensorBoard run name
            "overrides": list(config.hydra.overrides.task),
            "status": "failed" if failed else "completed",
            "objective": str(config.get("objective", "")),
            "value": value,
            "seconds": round(seconds, 3),
            "error": repr(job_return._return_value) if failed else None,
            "dir": str(config.hydra.runtime.output_dir),
            "pid": os.getpid(),  # which process ran it (a joblib worker, a SLURM task)
        }
        log.info(_job_line(result))
        results = Path(config.hydra.sweep.dir) / RESULTS_DIR
        results.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(result), results / f"{result['num']}.yaml")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Names the best job (``best_job.yaml`` with its whole config), writes the report, prints where things are."""
        if self._summarized:
            return
        self._summarized = True
        sweep_dir = Path(config.hydra.sweep.dir)
        results = read_results(sweep_dir)
        failed = [r for r in results if r["status"] == "failed"]
        lines = [f"Sweep finished: {len(results)} jobs, {len(failed)} failed, in {sweep_dir}"]
        lines += [f"  failed: {_job_line(r)}" for r in failed]
        direction = str(config.get("objective_direction", "minimize"))
        best = best_result(results, direction)
        if best is not None:
            best_file = _write_best(sweep_dir, best, direction)
            lines.append(f"Best ({direction} {best['objective']}): {_job_line(best)}")
            lines.append(f"  its config: {best_file}")
        if self.report and results:
            lines += _report_lines(sweep_dir)
        lines.append(f"TensorBoard: tensorboard --logdir {sweep_dir}")
        log.info("\n".join(lines))


def _job_line(result: dict[str, Any]) -> str:
    overrides = result.get("name") or "(defaults)"
    if result["status"] == "failed":
        outcome = f"FAILED {result['error']}"
    else:
        value = result["value"]
        outcome = f"{result['objective']}={value:.4g}" if value is not None else f"{result['objective']}=n/a"
    return f"#{result['num']} {overrides}  {outcome}  {result['seconds']:.1f} s"


def _write_best(sweep_dir: Path, best: dict[str, Any], direction: str) -> Path:
    """``<sweep>/best_job.yaml``: the best job's overrides, objective and the whole config it ran with."""
    config_path = Path(best["dir"]) / ".hydra" / "config.yaml"
    entry = {key: best[key] for key in ("overrides", "objective", "value", "dir")}
    entry["direction"] = direction
    entry["config"] = OmegaConf.load(config_path) if config_path.is_file() else None
    path = sweep_dir / BEST_FILE
    OmegaConf.save(OmegaConf.create(entry), path)
    return path


def _report_lines(sweep_dir: Path) -> list[str]:
    """Writes the comparison report; a failure to do so is printed, never raised (the jobs' results stand)."""
    try:
        from lrsched_pl.report import write_report

        report = write_report(sweep_dir, console=False)
    except Exception as error:  # noqa: BLE001 - the sweep is done; say why the report is missing, do not fail it
        return [f"Report: not written ({error!r}); try: python -m lrsched_pl.report {sweep_dir}"]
    lines = [f"Report: {report.markdown} (table: {report.csv}; figures: {', '.join(p.name for p in report.figures)})"]
    return lines + [f"  missing from the report: {entry}" for entry in report.missing]
