"""Job bookkeeping: each job's record (:mod:`lrsched_pl.jobs`), written where the job runs (a joblib worker, a SLURM
node), and the records a stopped sweep left ``running``, settled by the process that launched it.

A job is recorded ``running`` when it starts, then ``completed`` (with its objective value) or ``failed`` (with its
error). A job that finished in an earlier run of the same sweep keeps its record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig

from lrsched_pl import jobs


def identity(config: DictConfig) -> dict[str, Any]:
    """What every record of the job carries: its number, name, overrides, objective and directory."""
    return {
        "num": int(config.hydra.job.get("num") or 0),
        "name": str(config.hydra.sweep.subdir),  # the job's dir and TensorBoard run name
        "overrides": list(config.hydra.overrides.task),
        "objective": str(config.get("objective", "")),
        "dir": str(config.hydra.runtime.output_dir),
    }


def start_record(config: DictConfig) -> dict[str, Any] | None:
    """Records the job as ``running``.

    Returns:
        The job's record from an earlier run of the sweep when it finished then (kept, not rewritten), else ``None``.
    """
    sweep_dir, num = Path(config.hydra.sweep.dir), int(config.hydra.job.get("num") or 0)
    previous = jobs.read_record(sweep_dir, num)
    if previous is not None and previous.get("status") == jobs.COMPLETED:
        return previous
    record = {**identity(config), "status": jobs.RUNNING, "pid": os.getpid(),
              "previous": None if previous is None else previous.get("status")}  # fmt: skip
    jobs.write_record(sweep_dir, record)
    return None


def end_record(config: DictConfig, job_return: JobReturn, seconds: float) -> dict[str, Any]:
    """The job's record as ``completed`` (with its objective value) or ``failed`` (with its error), to write."""
    failed = job_return.status == JobStatus.FAILED
    record = {
        **identity(config),
        "status": jobs.FAILED if failed else jobs.COMPLETED,
        "value": None if failed else jobs.number(job_return.return_value),
        "seconds": round(seconds, 3),
        "error": jobs.error_line(job_return._return_value) if failed else None,
        "pid": os.getpid(),  # which process ran it (a joblib worker, a SLURM task)
    }
    previous = jobs.read_record(Path(config.hydra.sweep.dir), record["num"])
    record["previous"] = previous.get("previous") if previous else None
    return record


def settle(sweep_dir: Path, error: BaseException | None, interrupted: bool) -> None:
    """Rewrites the records of jobs that were stopped (still ``running``) as interrupted or failed."""
    for record in jobs.read_records(sweep_dir):
        if record.get("status") != jobs.RUNNING:
            continue
        if interrupted:
            record["status"] = jobs.INTERRUPTED
        else:
            record["status"] = jobs.FAILED
            record["error"] = _stopped_by(error)
        jobs.write_record(sweep_dir, record)


def _stopped_by(error: BaseException | None) -> str:
    """Why a job still ``running`` when the sweep ended has no result."""
    if error is None:
        return "stopped without a result"
    if type(error).__name__ == "TerminatedWorkerError":
        return ("TerminatedWorkerError: its joblib worker was killed (e.g. by the OS, out of memory), or another "
                "job's was and joblib stopped every job running then")  # fmt: skip
    return jobs.error_line(error)
