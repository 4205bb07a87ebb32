"""Run and sweep directories that belong to one run or sweep: unique names, flat job names, in-place resumes.

``conf/train.yaml`` builds its directory names with three resolvers registered here (:func:`register_resolvers`):

- ``${lrsched.run_id:}``: the time to the millisecond and 4 random hex digits, e.g. ``14-57-00-482-7f3a``, the same
  everywhere in one process (cached like Hydra's ``${now:}``): two runs started in the same second get two
  directories.
- ``${lrsched.flat:<name>}``: ``<name>`` with ``/`` replaced by ``_``, so an override such as ``objective=val/acc``
  names one directory (``objective=val_acc``) instead of nesting ``objective=val/`` + ``acc``.
- ``${lrsched.resume_dir:<ckpt_path>,<default>}``: the run directory a ``<run>/checkpoints/<file>.ckpt`` belongs to, so
  a resume continues in its own run (one TensorBoard run); ``<default>`` for a new run.

:class:`RunDirGuard` (a Hydra callback) refuses a single run whose ``hydra.run.dir`` already holds another run before
Hydra writes anything into it.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lrsched_pl.errors import ConfigValueError
from lrsched_pl.jobs import GRID_FILE, RESULTS_DIR

CHECKPOINTS = "checkpoints"  # conf/callbacks: model_checkpoint.dirpath = ${output_dir}/checkpoints
LAST_CHECKPOINT = "last.ckpt"
# Environment variables a non-zero rank of a multi-process job carries (Lightning's DDP children, SLURM tasks).
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID")


def rank_zero() -> bool:
    """Whether this process is rank 0 (or the only process) of its run."""
    return all(os.environ.get(name, "0") == "0" for name in _RANK_VARIABLES)


def _slurm_step() -> str | None:
    """``<job id>.<step id>`` for one task of a SLURM step of several tasks (the ranks of one run), else ``None``."""
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
    return None


def run_id() -> str:
    """``HH-MM-SS-mmm-xxxx``: local time to the millisecond, then 4 random hex digits.

    The tasks of one multi-task SLURM step (``srun python train.py`` with one task per device) are the ranks of one
    run and each resolves this on its own: they share ``slurm-<job id>.<step id>`` instead.
    """
    if (step := _slurm_step()) is not None:
        return f"slurm-{step}"
    now = time.time()
    return time.strftime("%H-%M-%S", time.localtime(now)) + f"-{int(now % 1 * 1000):03d}-{secrets.token_hex(2)}"


def flat(name: Any) -> str:
    """A directory name without ``/``: ``objective=val/acc`` -> ``objective=val_acc``."""
    return str(name).replace("/", "_")


def run_dir_of(ckpt_path: str | os.PathLike[str]) -> Path | None:
    """The run directory holding ``ckpt_path`` (``<run>/checkpoints/<file>``, ``<run>/.hydra``), or ``None``."""
    checkpoints = Path(ckpt_path).parent
    run = checkpoints.parent
    return run if checkpoints.name == CHECKPOINTS and (run / ".hydra").is_dir() else None


def resume_dir(ckpt_path: Any, default: Any) -> str:
    """``hydra.run.dir``: the run a checkpoint belongs to (resume in place), else ``default`` (a new run)."""
    run = run_dir_of(str(ckpt_path)) if ckpt_path not in (None, "") else None
    return str(run) if run is not None else str(default)


def register_resolvers() -> None:
    """Registers ``lrsched.run_id``, ``lrsched.flat`` and ``lrsched.resume_dir`` (idempotent)."""
    OmegaConf.register_new_resolver("lrsched.run_id", run_id, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("lrsched.flat", flat, replace=True)
    OmegaConf.register_new_resolver("lrsched.resume_dir", resume_dir, replace=True)


def holds_run(directory: Path) -> bool:
    """Whether ``directory`` holds a run: Hydra's ``.hydra/``, TensorBoard events or checkpoints (an empty
    ``checkpoints/``, e.g. a mount point prepared for the run, is not one)."""
    checkpoints = directory / CHECKPOINTS
    return directory.is_dir() and (
        (directory / ".hydra").is_dir()
        or (checkpoints.is_dir() and any(checkpoints.iterdir()))
        or any(directory.glob("events.out.tfevents.*"))
    )


def holds_sweep(directory: Path) -> bool:
    """Whether ``directory`` holds a sweep: Hydra's ``multirun.yaml``, or the sweep's ``jobs.yaml`` or ``results/``."""
    return any((directory / name).exists() for name in ("multirun.yaml", GRID_FILE, RESULTS_DIR))


def check_run_dir(run_dir: Path, ckpt_path: Any) -> None:
    """Refuses a run directory that holds another run or a sweep, unless ``ckpt_path`` resumes that very run.

    Raises:
        ConfigValueError: Naming ``hydra.run.dir`` and the two ways out.
    """
    if holds_sweep(run_dir):
        raise ConfigValueError("hydra.run.dir", str(run_dir), "a directory that holds no sweep (this one holds a "
                               "sweep's multirun.yaml or results): leave hydra.run.dir unset for a new directory")
    if not holds_run(run_dir):
        return
    if ckpt_path not in (None, "") and Path(str(ckpt_path)).resolve().is_relative_to(run_dir.resolve()):
        return
    raise ConfigValueError(
        "hydra.run.dir",
        str(run_dir),
        "a directory that holds no other run (this one has its .hydra/, events or checkpoints): leave "
        "hydra.run.dir unset for a new directory, or continue that run with "
        f"ckpt_path={run_dir / CHECKPOINTS / LAST_CHECKPOINT}",
    )


class RunDirGuard(Callback):
    """Refuses a single run pointed at a directory that holds another run, before Hydra writes into it.

    A DDP rank that Lightning starts by running ``train.py`` again with ``hydra.run.dir=<its parent's>`` is not
    checked: only rank 0 owns the directory. Nor are the tasks of a multi-task SLURM step, which start together and
    share their directory (``slurm-<job id>.<step id>``): the first to arrive would refuse the others.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not rank_zero() or _slurm_step() is not None:
            return
        try:
            check_run_dir(Path(str(config.hydra.run.dir)), config.get("ckpt_path"))
        except ConfigValueError as error:
            print(f"Error: {error}", file=sys.stderr)
            raise SystemExit(1) from None  # Hydra turns a callback's exception into a warning


def logger_resume_kwargs(logger: DictConfig, ckpt_path: Any) -> dict[str, Any]:
    """``purge_step`` for a TensorBoard logger resuming from ``ckpt_path``, so its curves continue without a repeat.

    The checkpoint holds the number of optimizer steps done (``_batches_that_stepped``, the step Lightning logs
    at); TensorBoard hides the events of the interrupted attempt from that step on (``SummaryWriter(purge_step=)``),
    so steps logged after the checkpoint and before the stop are not shown twice.
    """
    if ckpt_path in (None, "") or not str(logger.get("_target_", "")).endswith("TensorBoardLogger"):
        return {}
    step = checkpoint_step(Path(str(ckpt_path)))
    return {} if step is None else {"purge_step": step}


def checkpoint_step(ckpt_path: Path) -> int | None:
    """The optimizer steps a Lightning checkpoint had done, read without loading its tensors (``mmap``)."""
    import torch

    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", mmap=True, weights_only=True)
        loop = checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]
        return int(loop.get("_batches_that_stepped", checkpoint["global_step"]))
    except Exception:  # noqa: BLE001 - Lightning reports an unreadable checkpoint itself, with its own message
        return None
