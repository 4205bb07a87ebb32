"""Checking a sweep before its first job: every job of a grid composed and checked, their directories, the sweep's.

A grid sweep (Hydra's BasicSweeper, under any launcher) is expanded as the sweeper will expand it, and every job's
config is composed as the launchers compose it and checked (``lrsched_pl.config.validate``,
``lrsched_pl.launch.check_launch``, the objective); so are the job directories (one per job) and the sweep
directory (one sweep per directory). One bad job refuses the sweep with one line (:class:`SweepRefused`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lrsched_pl import jobs
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.rundir import holds_run, holds_sweep

DEFAULT_MODEL_METRICS = ("val/loss", "val/acc", "train/loss")  # what lrsched_pl.models.Classifier logs


class SweepRefused(ValueError):
    """A sweep refused before its first job, with the one line that says why."""


@dataclass(frozen=True)
class Job:
    """One job of a grid sweep: its number (``hydra.job.num``), overrides and directory under the sweep dir."""

    num: int
    overrides: list[str]
    subdir: str

    def describe(self) -> str:
        return f"#{self.num} ({' '.join(self.overrides) or 'no overrides'})"


def check_objective(cfg: DictConfig) -> None:
    """Refuses an ``objective`` the default model never logs (a model of your own is checked when it validates)."""
    target = str(OmegaConf.select(cfg, "model._target_", default="") or "")
    objective = cfg.get("objective")
    if target.startswith("lrsched_pl.models.") and objective not in DEFAULT_MODEL_METRICS:
        raise ConfigValueError(
            "objective", objective, f"a metric the default model logs: {', '.join(DEFAULT_MODEL_METRICS)}"
        )


def expand_grid(config: DictConfig) -> list[list[str]] | None:
    """Every job's overrides in the order Hydra's BasicSweeper launches them, or ``None`` for another sweeper."""
    sweeper = config.hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]  # as BasicSweeper.sweep
    task = params + list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    batches = BasicSweeper.split_arguments(parser.parse_overrides(task), max_batch_size=None)
    return [list(job) for batch in batches for job in batch]


def check_jobs(config: DictConfig, grid: list[list[str]]) -> list[Job]:
    """Composes every job's config as the launchers do (``load_sweep_config``) and checks it and its directory.

    Raises:
        SweepRefused: Naming the first bad job's number, overrides and key; or two jobs that share a directory.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from lrsched_pl.config import validate
    from lrsched_pl.launch import check_launch

    loader = GlobalHydra.instance().config_loader()
    sweep_dir = str(config.hydra.sweep.dir)
    saved = HydraConfig.instance().cfg
    checked: list[Job] = []
    try:
        for num, overrides in enumerate(grid):
            job = Job(num, overrides, "")
            try:
                cfg = loader.load_sweep_config(config, list(overrides))
                with open_dict(cfg):
                    cfg.hydra.job.id = num
                    cfg.hydra.job.num = num
                HydraConfig.instance().set_config(cfg)  # ${hydra:...} in the subdir and the task config
                job = Job(num, overrides, str(OmegaConf.select(cfg, "hydra.sweep.subdir")))
                with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
                    cfg.hydra.runtime.output_dir = os.path.abspath(os.path.join(sweep_dir, job.subdir))
                HydraConfig.instance().set_config(cfg)
                task = copy.deepcopy(cfg)
                with read_write(task), open_dict(task):
                    del task["hydra"]
                validate(task)
                check_launch(task, multirun=True, launcher=cfg.hydra.get("launcher"))
                check_objective(task)
            except Exception as error:  # noqa: BLE001 - Hydra's composition errors have several types
                message = error.describe() if isinstance(error, ConfigValueError) else jobs.error_line(error)
                raise SweepRefused(f"job {job.describe()}: {message}") from None
            checked.append(job)
    finally:
        HydraConfig.instance().cfg = saved
    _check_subdirs(checked)
    return checked


def _check_subdirs(grid: list[Job]) -> None:
    """One directory per job, each name a valid one (at most 255 bytes per path component)."""
    owner: dict[str, Job] = {}
    hint = "(e.g. hydra.sweep.subdir=${hydra.job.num}, or keep the swept keys out of override_dirname.exclude_keys)"
    for job in grid:
        if job.subdir in owner:
            error = ConfigValueError(
                "hydra.sweep.subdir", job.subdir,
                f"different for every job, but jobs {owner[job.subdir].describe()} and {job.describe()} both get it "
                + hint,
            )  # fmt: skip
            raise SweepRefused(error.describe())
        if any(len(part.encode()) > 255 for part in Path(job.subdir).parts):
            error = ConfigValueError(
                "hydra.sweep.subdir", job.subdir, f"at most 255 bytes per directory name, for job {job.describe()} "
                "(e.g. hydra.sweep.subdir=${hydra.job.num})"
            )  # fmt: skip
            raise SweepRefused(error.describe())
        owner[job.subdir] = job


def check_sweep_dir(sweep_dir: Path, grid: list[Job] | None) -> bool:
    """Whether the sweep continues one already in ``sweep_dir`` (the same jobs in the same directories).

    Raises:
        SweepRefused: When ``sweep_dir`` holds a run, or a sweep of other jobs (or of a sweeper that cannot
            continue one, such as Optuna's in-memory search).
    """
    if holds_run(sweep_dir):
        raise SweepRefused(ConfigValueError(
            "hydra.sweep.dir", str(sweep_dir), "a directory that holds no run (this one holds a single run's files): "
            "leave hydra.sweep.dir unset for a new directory").describe())  # fmt: skip
    if not holds_sweep(sweep_dir):
        return False
    previous = jobs.read_grid(sweep_dir)
    if grid is not None and previous == [grid_entry(job) for job in grid]:
        return True
    if grid is None:
        raise SweepRefused(ConfigValueError(
            "hydra.sweep.dir", str(sweep_dir), "a directory that holds no sweep: this sweeper (e.g. Optuna's) decides "
            "its jobs as it goes and cannot continue one in place; leave hydra.sweep.dir unset for a new "
            "directory").describe())  # fmt: skip
    raise SweepRefused(ConfigValueError(
        "hydra.sweep.dir", str(sweep_dir), "a directory that holds no other sweep (this one holds a sweep of other "
        "jobs): leave hydra.sweep.dir unset for a new directory; to continue that sweep, run its own command "
        "again").describe())  # fmt: skip


def grid_entry(job: Job) -> dict[str, Any]:
    return {"num": job.num, "overrides": list(job.overrides), "subdir": job.subdir}
