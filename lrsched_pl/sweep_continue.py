"""Continuing a sweep: what an earlier run of the same sweep (the same command, the same ``hydra.sweep.dir``) left
for each job. A finished job keeps its result, a stopped one resumes from its own ``checkpoints/last.ckpt``, the
others start.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, read_write

from lrsched_pl import jobs
from lrsched_pl.rundir import CHECKPOINTS, LAST_CHECKPOINT

log = logging.getLogger("lrsched_pl.sweep")  # the sweep's one logger: its lines read `[lrsched_pl.sweep]`


@dataclass(frozen=True)
class Kept:
    """A job that finished in an earlier run of the same sweep: its recorded objective value."""

    value: float | None


def continue_job(cfg: DictConfig) -> Kept | None:
    """Called by a sweep job before it trains: what an earlier run of the same sweep left for it.

    Returns:
        :class:`Kept` for a job that finished before (not trained again). ``None`` otherwise: a job stopped before
        (interrupted, failed, killed) resumes from its ``checkpoints/last.ckpt`` (``cfg.ckpt_path`` is set to it) or,
        without one, starts again in an emptied directory; a new job just starts.
    """
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    record = jobs.read_record(Path(hydra.sweep.dir), int(hydra.job.num))
    if record is None:
        return None
    if record.get("status") == jobs.COMPLETED:
        return Kept(jobs.number(record.get("value")))
    if record.get("previous") is None:  # its first attempt
        return None
    job_dir = Path(hydra.runtime.output_dir)
    last = job_dir / CHECKPOINTS / LAST_CHECKPOINT
    if last.is_file():
        with read_write(cfg):
            cfg.ckpt_path = str(last)
        log.info(f"#{hydra.job.num} resumes from {last}")
        return None
    for path in [*job_dir.glob("events.out.tfevents.*"), job_dir / "hparams.yaml", job_dir / CHECKPOINTS]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()  # an attempt stopped before its first checkpoint: its curves would mix with the new ones
    return None
