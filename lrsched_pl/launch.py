"""Where a run's processes come from, checked before a sweep launches: Hydra's launchers vs Lightning's DDP."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lrsched_pl.errors import ConfigValueError

# Strategies that start their processes from inside the job (a fork or a spawn) rather than by re-running this
# script; the start methods of `_target_` strategies (DDPStrategy(start_method=...)) that do the same.
_IN_JOB_STRATEGIES = ("spawn", "fork", "notebook")
_IN_JOB_START_METHODS = ("spawn", "fork", "forkserver")


def _processes(trainer: DictConfig) -> int | None:
    """How many processes the Trainer starts (devices x nodes), or ``None`` when it depends on the machine."""
    devices, nodes = trainer.get("devices", "auto"), trainer.get("num_nodes", 1)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if devices in ("auto", -1):
        if str(trainer.get("accelerator", "auto")) in ("cpu", "mps"):
            devices = 1  # Lightning's CPU and MPS accelerators count one device for "auto"
        else:
            return None
    if isinstance(devices, str):  # "0,1": device ids
        devices = len([d for d in devices.split(",") if d.strip()])
    elif not isinstance(devices, int):  # a list of device ids
        devices = len(devices)
    return devices * int(nodes)


def check_launch(cfg: DictConfig, multirun: bool, launcher: DictConfig | None = None) -> None:
    """Refuses a Hydra multirun whose jobs would start their DDP ranks by re-running this script.

    Lightning's ``ddp`` launcher (also what ``strategy: auto``, ``fsdp`` and ``deepspeed`` use on several devices)
    starts every other rank as ``python train.py <the same arguments>``. Under ``-m`` each rank would then run the
    whole sweep again, each job's ranks disagreeing on the job (hydra#2070, Lightning PR #18175). ``ddp_spawn``
    starts the ranks from inside each job and is safe. Under ``hydra/launcher=submitit_slurm`` the SLURM tasks are
    checked instead: ``ddp`` with one task per device (SLURM starts the ranks of each job and Lightning's
    ``SLURMEnvironment`` joins them); ``ddp_spawn``/``ddp_fork`` on several devices is refused there.

    Args:
        cfg: The job's config.
        multirun: Whether Hydra runs this job as part of a sweep (``-m``).
        launcher: The ``hydra.launcher`` node, if any.

    Raises:
        ConfigValueError: Naming ``trainer.strategy`` and the fix, for a multirun on more than one device or node
            (or on all GPUs, ``devices: auto``) with any other strategy; naming ``hydra.launcher.tasks_per_node``
            or ``hydra.launcher.nodes`` when a SLURM job's tasks would not be its ranks exactly once, and
            ``trainer.strategy`` for a spawning strategy on several devices under SLURM.
    """
    if not multirun:
        return
    strategy = cfg.trainer.get("strategy", "auto")
    if launcher is not None and str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
        _check_slurm_tasks(cfg.trainer, launcher, in_job=_starts_ranks_in_job(strategy))
        return
    if _starts_ranks_in_job(strategy):
        return
    shown: Any = strategy.get("_target_", "?") if isinstance(strategy, DictConfig) else strategy
    processes = _processes(cfg.trainer)
    if processes is None:
        import torch  # only here: "auto" devices on a GPU machine means every GPU

        processes = torch.cuda.device_count() * int(cfg.trainer.get("num_nodes", 1))
    if processes <= 1:
        return
    raise ConfigValueError(
        "trainer.strategy",
        shown,
        f"ddp_spawn (or ddp_fork) under a Hydra multirun (-m) on {processes} processes, where Lightning's "
        f"`{shown}` launcher would start every other rank by running train.py again with the same arguments and "
        "each rank would run the whole sweep (set `trainer.strategy=ddp_spawn`, or run the jobs one by one "
        "without -m)",
    )


def _starts_ranks_in_job(strategy: Any) -> bool:
    """Whether the strategy starts its ranks from inside the job (a spawn or a fork), not by re-running the script."""
    if isinstance(strategy, DictConfig):
        return str(strategy.get("start_method", "popen")) in _IN_JOB_START_METHODS
    return any(word in str(strategy) for word in _IN_JOB_STRATEGIES)


def _check_slurm_tasks(trainer: DictConfig, launcher: DictConfig, in_job: bool) -> None:
    """The SLURM job's tasks must be the job's ranks, exactly once: one task per device, one node per Lightning node.

    Inside a SLURM job Lightning takes every rank's number from SLURM (``SLURMEnvironment``, ``SLURM_PROCID``), so
    ``srun`` must start them all: ``ddp`` with ``tasks_per_node`` = ``trainer.devices``. A ``ddp_spawn`` or
    ``ddp_fork`` job on several devices would spawn ranks that all read ``SLURM_PROCID`` = 0 (measured on a local
    cluster: "EADDRINUSE" as both bind rank 0's port); with more tasks each task would spawn its own set.
    """
    devices = _processes(OmegaConf.merge(trainer, {"num_nodes": 1}))
    if in_job and (devices is None or devices * int(trainer.get("num_nodes", 1)) > 1):
        raise ConfigValueError(
            "trainer.strategy",
            trainer.get("strategy"),
            "ddp under hydra/launcher=submitit_slurm on several devices: in a SLURM job Lightning takes each "
            "rank from SLURM, so srun must start them (set trainer.strategy=ddp and hydra.launcher.tasks_per_node "
            "to trainer.devices)",
        )
    if devices is None:
        raise ConfigValueError(
            "trainer.devices",
            trainer.get("devices"),
            "a number of devices per node under hydra/launcher=submitit_slurm, equal to "
            "hydra.launcher.tasks_per_node (SLURM starts one task per device)",
        )
    pairs = (("tasks_per_node", devices, "trainer.devices"), ("nodes", trainer.num_nodes, "trainer.num_nodes"))
    for key, want, what in pairs:
        if int(launcher.get(key, 1)) != int(want):
            raise ConfigValueError(
                f"hydra.launcher.{key}",
                launcher.get(key),
                f"{want}, equal to {what}: SLURM starts the job's DDP ranks, one task per device "
                f"(set hydra.launcher.{key}={want}, and hydra.launcher.gpus_per_node to the devices per node)",
            )


def requeued_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint a requeued SLURM job continues from: its own ``last.ckpt``, when SLURM restarted the job.

    A job that hits its time limit or is preempted gets the signal its launcher asked for
    (``hydra.launcher.signal_delay_s`` seconds before the end); submitit then calls the Hydra launcher's
    ``checkpoint`` method, which re-submits the same job unchanged, and requeues it (``hydra.launcher.max_num_timeout``
    bounds the requeues after a time limit; preemptions always requeue). ``scontrol requeue`` and a node failure
    restart a job the same way. The restarted job writes into the same run directory, and this is where it finds
    the state to continue from: the latest ``callbacks.model_checkpoint`` checkpoint, written at a step boundary,
    so the LR curve goes on exactly as in an uninterrupted run (``tests/test_slurm.py``). Lightning's own
    auto-requeue (on ``SIGUSR1``, which submitit's ``--signal=USR2`` never sends) is not relied on: it saves
    ``hpc_ckpt_*.ckpt`` from inside the signal handler, at whatever instruction training was at, and a run resumed
    from a checkpoint taken between a batch's start and its optimizer step logged every later LR one step late.

    Args:
        cfg: The job's config.

    Returns:
        ``<callbacks.model_checkpoint.dirpath>/last.ckpt`` when ``SLURM_RESTART_COUNT`` > 0, ``ckpt_path`` is unset,
        the checkpoint callback keeps ``last.ckpt`` and the file exists; else ``None`` (a fresh start).
    """
    if int(os.environ.get("SLURM_RESTART_COUNT") or 0) == 0 or cfg.get("ckpt_path") is not None:
        return None
    checkpoint = cfg.get("callbacks", {}).get("model_checkpoint")
    if not checkpoint or not checkpoint.get("save_last") or checkpoint.get("dirpath") is None:
        return None
    last = Path(checkpoint.dirpath, "last.ckpt")
    return str(last) if last.is_file() else None
