"""One training run from a validated config: instantiate, fit, return the objective. Imports Lightning."""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lrsched_pl import interrupt, lr_find
from lrsched_pl.checkpoint import check_checkpoint
from lrsched_pl.checkpoint_io import AtomicCheckpointIO
from lrsched_pl.companions import companion_callbacks
from lrsched_pl.config import describe
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.hparams import charts_for, log_hparams, log_layout
from lrsched_pl.launch import requeued_checkpoint
from lrsched_pl.objective import ObjectiveCheck
from lrsched_pl.param_groups import model_kwargs
from lrsched_pl.process_group import DestroyProcessGroupAtExit
from lrsched_pl.rng import RandomState
from lrsched_pl.rundir import logger_resume_kwargs

log = logging.getLogger(__name__)

# Lightning 2.6 with torch >= 2.10 warns about torch's pytree API on every fit; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# On a host with SLURM's client tools, every run that srun did not start hears about srun: a run started here
# on purpose (a laptop-style run on a login node, a job of a local launcher) has nothing to act on either.
warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system but is not used.*")


class _NoAdvert(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger (a tip in every run); keeps every real message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdvert())


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
    if cfg.get("lr_find"):  # the LR range test first, into <output_dir>/lr_find; sets its suggestion in cfg
        lr_find.apply(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    # plain containers, not ListConfig: hyperparameters saved in checkpoints must load with weights_only=True
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, optimizer=instantiate(cfg.optimizer), **model_kwargs(cfg), _convert_="all")
    ckpt_path = cfg.ckpt_path or requeued_checkpoint(cfg)  # a requeued SLURM job continues where it stopped
    if ckpt_path is not None:  # before the logger and Trainer write anything: a refusal leaves no run
        check_checkpoint(ckpt_path, model, _optimizer(model), seed=cfg.get("seed"))
    callbacks = [instantiate(node) for node in cfg.callbacks.values() if node is not None]
    callbacks += companion_callbacks(cfg, callbacks)  # e.g. train/eval modes of a schedule-free optimizer
    callbacks.append(RandomState())  # exact resumes: the random states travel in every checkpoint
    callbacks.append(DestroyProcessGroupAtExit())  # a gloo rank must not leave its group to interpreter shutdown
    if sweep:  # a sweep ranks its jobs by the objective: a name the model never logs fails the first validation
        callbacks.append(ObjectiveCheck(cfg.objective))
    resume = logger_resume_kwargs(cfg.logger, ckpt_path) if cfg.get("logger") else {}
    logger = instantiate(cfg.logger, **resume) if cfg.get("logger") else False
    plugins = {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks, **plugins, **quiet)
    if logger:
        log_hparams(logger, describe(cfg), metrics=["val/loss", "val/acc"])
        log_layout(logger, charts_for(callbacks, str(cfg.optimizer.get("_target_", ""))))
    try:
        with interrupt.fitting():
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except ConfigValueError:  # refused when training starts (a length the run cannot hold): before any step
        if trainer.global_step == 0 and ckpt_path is None:
            _remove_new_entries(output_dir, existing)
        raise
    except (KeyboardInterrupt, SystemExit) as stop:  # SIGTERM/SIGINT (lrsched_pl.interrupt sets the exit code)
        signum = interrupt.received()
        if signum is None:
            raise
        if trainer.global_step == 0 and ckpt_path is None:
            _close_writer(logger)  # or it writes its event file again when it flushes at exit
            _remove_new_entries(output_dir, existing)
        log.warning(
            f"Run stopped by {interrupt.SIGNALS.get(signum, signum)} after step {trainer.global_step}; "
            f"{_checkpoint_note(trainer)} (exit code {interrupt.exit_code(signum)})"
        )
        raise stop
    except Exception as err:
        note = _checkpoint_note(trainer)
        log.error(f"Run failed after step {trainer.global_step}: {type(err).__name__}: {err}; {note}")
        raise
    value = trainer.callback_metrics.get(cfg.objective)
    level = logging.DEBUG if sweep else logging.INFO  # a sweep prints one line per job (SweepSummary)
    note = _checkpoint_note(trainer)
    log.log(level, f"Run finished after step {trainer.global_step}: {cfg.objective} = {value}; {note}")
    return None if value is None else float(value)


def _close_writer(logger: Any) -> None:
    """Closes a logger's event-file writer, if it has one open (TensorBoard's reopens a removed file on flush)."""
    writer = getattr(logger, "_experiment", None)
    if writer is not None and hasattr(writer, "close"):
        writer.close()


def _checkpoint_note(trainer: pl.Trainer) -> str:
    """Where the last checkpoint is, for the line that says how the run ended."""
    paths = [c.last_model_path or c.best_model_path for c in trainer.checkpoint_callbacks]
    paths = [p for p in paths if p]
    return f"last checkpoint: {paths[0]}" if paths else "no checkpoint written"


def _optimizer(model: pl.LightningModule) -> torch.optim.Optimizer | None:
    """The model's single optimizer as ``configure_optimizers`` builds it before a Trainer exists, else ``None``."""
    try:
        optimizer = model.configure_optimizers()
    except Exception:  # a model that needs its Trainer to build the optimizer: its optimizer state is not checked
        return None
    return optimizer if isinstance(optimizer, torch.optim.Optimizer) else None


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
