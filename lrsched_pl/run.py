"""One training run from a validated config: instantiate, fit, return the objective. Imports Lightning."""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from lrsched_pl.config import describe
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.hparams import log_hparams, log_layout
from lrsched_pl.launch import requeued_checkpoint

# Lightning 2.6 with torch >= 2.10 warns about torch's pytree API on every fit; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def train(cfg: DictConfig, sweep: bool = False) -> float | None:
    """Fits ``cfg.model`` on ``cfg.data`` with the configured trainer, logger and callbacks.

    Args:
        cfg: The validated run config.
        sweep: A job of a Hydra multirun: no progress bar, model summary or Lightning info lines unless the
            config asks for them, so a sweep prints one line per job (:class:`lrsched_pl.sweep.SweepSummary`).

    Returns:
        The final value of ``cfg.objective`` (e.g. ``val/loss``), or ``None`` if it was never logged.
    """
    quiet = _quiet(cfg, sweep)
    output_dir = Path(cfg.output_dir)
    existing = set(output_dir.iterdir()) if output_dir.is_dir() else set()
    pl.seed_everything(cfg.seed, workers=True)
    # plain containers, not ListConfig: hyperparameters saved in checkpoints must load with weights_only=True
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, optimizer=instantiate(cfg.optimizer), _convert_="all")
    callbacks = [instantiate(node) for node in cfg.callbacks.values() if node is not None]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks, **quiet)
    if logger:
        log_hparams(logger, describe(cfg), metrics=["val/loss", "val/acc"])
        log_layout(logger)
    ckpt_path = cfg.ckpt_path or requeued_checkpoint(cfg)  # a requeued SLURM job continues where it stopped
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except ConfigValueError:  # refused when training starts (a length the run cannot hold): before any step
        if trainer.global_step == 0 and ckpt_path is None:
            _remove_new_entries(output_dir, existing)
        raise
    value = trainer.callback_metrics.get(cfg.objective)
    return None if value is None else float(value)


def _quiet(cfg: DictConfig, sweep: bool) -> dict[str, bool]:
    """Trainer arguments that keep a sweep's jobs silent: the ones the config leaves at ``null`` (Lightning's default).

    A single run keeps Lightning's rich progress bar and model summary; in a sweep, Lightning's info lines ("GPU
    available", "Seed set", "`Trainer.fit` stopped") are dropped too.
    """
    _log_once()
    if not sweep:
        return {}
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    keys = ("enable_progress_bar", "enable_model_summary")
    return {key: False for key in keys if cfg.trainer.get(key) is None}


def _log_once() -> None:
    """Leaves Lightning's log lines to Hydra's handlers (console and the job's ``.log`` file) when Hydra set them up.

    ``import lightning`` adds its own console handler to the ``lightning`` logger, which also propagates to the root
    logger Hydra configured: every line was printed twice.
    """
    if logging.getLogger().hasHandlers():
        lightning_logger = logging.getLogger("lightning")
        for handler in list(lightning_logger.handlers):
            lightning_logger.removeHandler(handler)


def _remove_new_entries(directory: Path, existing: set[Path]) -> None:
    """Deletes what this run added to ``directory`` (events, ``hparams.yaml``, ``checkpoints/``): nothing else."""
    if not directory.is_dir():
        return
    for path in set(directory.iterdir()) - existing:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
