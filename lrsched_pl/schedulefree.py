"""Schedule-free optimizers (package ``schedulefree``) under Lightning: train mode to train, eval mode to evaluate.

A schedule-free optimizer keeps two points per parameter: ``y``, where gradients are taken (train mode), and the
average ``x``, which is the model to evaluate and to save (eval mode); ``optimizer.eval()`` / ``optimizer.train()``
move the parameters between them in place (Defazio et al. 2024, the package's README). Lightning does not call
them (Lightning-AI/pytorch-lightning#20441), so :class:`ScheduleFreeCallback` does:

- train mode before every training batch (``on_train_batch_start``);
- eval mode for validation, testing and prediction (``on_validation_start`` ...) and at the end of ``fit``, so the
  module holds the averaged weights afterwards; train mode comes back with the next training batch, which also
  keeps ``ModelCheckpoint``'s save after a validation (it runs after this callback) in eval mode;
- every checkpoint holds the averaged weights and an optimizer in eval mode: a checkpoint written in train mode
  (e.g. ``every_n_train_steps``) is rewritten in ``on_save_checkpoint`` as if written in eval mode, and the
  optimizer returns to train mode right after. Resuming then runs ``optimizer.train()`` on the same ``x`` as the
  uninterrupted run did, so the run continues bit for bit;
- BatchNorm (the package's recipe): whenever the weights have just become the average, the running statistics are
  recomputed at it on up to ``bn_batches`` training batches (``torch.optim.swa_utils.update_bn``: reset, then a
  cumulative average, as PreciseBN), with the RNG isolated so training draws the same random numbers.
"""

from __future__ import annotations

import itertools
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from lightning.pytorch.utilities.seed import isolate_rng
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.swa_utils import update_bn
from typing_extensions import override

from lrsched_pl.callback import ScheduleCallback
from lrsched_pl.errors import ConfigValueError, check_int

# How many points of a run's LR curve are checked for a decay after the peak or a cycled momentum.
_SAMPLES = 512


def is_schedule_free(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` has schedulefree's train/eval modes (``train_mode`` in every param group)."""
    return callable(getattr(optimizer, "eval", None)) and all("train_mode" in g for g in optimizer.param_groups)


class ScheduleFreeCallback(Callback):
    """Switches schedule-free optimizers between train mode (training steps) and eval mode (everything else).

    Optimizers that are not schedule-free are left alone, so the callback is safe in any Trainer.

    Args:
        bn_batches: Training batches used to recompute BatchNorm statistics at the averaged weights (the package
            suggests 50); ``0`` skips it. Nothing is done for a model without BatchNorm. Each batch is passed to
            the module as ``module(batch[0])`` for tuples and lists, ``module(batch)`` otherwise.

    Example:
        >>> # lightning.Trainer(callbacks=[ScheduleFreeCallback()]).fit(model)   # model uses AdamWScheduleFree
    """

    def __init__(self, bn_batches: int = 50) -> None:
        check_int("bn_batches", bn_batches, low=0)
        self.bn_batches = bn_batches

    # ---- hooks -----------------------------------------------------------------------------------------------

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if any(is_schedule_free(opt) for opt in trainer.optimizers):
            for callback in trainer.callbacks:
                if isinstance(callback, ScheduleCallback):
                    check_schedule(callback.schedule, callback.interval, _run_length(trainer, callback.interval))

    @override
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        for opt in trainer.optimizers:
            if is_schedule_free(opt) and not opt.param_groups[0]["train_mode"]:
                opt.train()

    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._to_eval(trainer, pl_module)

    @override
    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._to_eval(trainer, pl_module)

    @override
    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._to_eval(trainer, pl_module)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._to_eval(trainer, pl_module)  # the fitted module holds the averaged weights

    @override
    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Lightning has already copied the weights and optimizer states into `checkpoint` (references to the live
        # tensors): when they are train-mode ones, switch, put copies of the eval-mode state in, and switch back.
        if not self._to_eval(trainer, pl_module):
            return
        checkpoint["state_dict"] = {k: v.clone() for k, v in trainer.strategy.lightning_module_state_dict().items()}
        if "optimizer_states" in checkpoint:
            checkpoint["optimizer_states"] = [trainer.strategy.optimizer_state(opt) for opt in trainer.optimizers]
        for opt in trainer.optimizers:
            if is_schedule_free(opt):
                opt.train()

    # ---- the work --------------------------------------------------------------------------------------------

    def _to_eval(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        """Puts every schedule-free optimizer in eval mode; recomputes BatchNorm statistics if any was switched.

        Returns:
            Whether an optimizer was in train mode (the weights changed).
        """
        switched = False
        for opt in trainer.optimizers:
            if is_schedule_free(opt) and any(g["train_mode"] for g in opt.param_groups):
                opt.eval()
                switched = True
        if switched:
            self._recompute_bn(trainer, pl_module)
        return switched

    def _recompute_bn(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.bn_batches == 0 or not any(isinstance(m, _BatchNorm) for m in pl_module.modules()):
            return
        loader = trainer.train_dataloader
        if not isinstance(loader, torch.utils.data.DataLoader):
            rank_zero_warn(
                "ScheduleFreeCallback: the BatchNorm statistics stay those of the training weights, not the averaged "
                f"ones: no single training DataLoader to recompute them from (got {type(loader).__name__}). Compute "
                "them yourself before evaluating, or set `bn_batches=0` to silence this."
            )
            return
        batches = (trainer.strategy.batch_to_device(b) for b in itertools.islice(loader, self.bn_batches))
        with isolate_rng(), torch.no_grad():
            update_bn(batches, pl_module)


def check_schedule(schedule: Any, interval: str, length: int | None) -> None:
    """Refuses a schedule that cycles momentum, and warns about one that decays, on a schedule-free optimizer.

    ``optimizer.eval()`` and ``.train()`` move between ``y`` and ``x`` with the momentum (SGD) or ``betas[0]``
    (AdamW) of the moment, so a momentum changed between them puts the weights off the average.

    Args:
        schedule: The :class:`~lrsched_pl.schedules.Schedule` of the run (unbound).
        interval: ``"step"`` or ``"epoch"``, for the messages.
        length: The run's length in intervals (``None``: unknown; then only ``t = 0 .. 511`` are looked at).

    Raises:
        RuntimeError: If the schedule sets a momentum at any point of the run.
    """
    try:
        bound = schedule.bind(length)
    except ConfigValueError:  # a length the run cannot hold: ScheduleCallback reports it
        return
    n = length if length else _SAMPLES
    ts = sorted({round(i * (n - 1) / (_SAMPLES - 1)) for i in range(_SAMPLES)}) if n > _SAMPLES else range(n)
    if any(bound.momentum(t) is not None for t in ts):
        raise RuntimeError(
            f"The schedule {schedule!r} cycles momentum, which schedule-free optimizers use to move between the "
            "training and the averaged weights. Set `schedule.cycle_momentum=false`, or use a non-schedule-free "
            "optimizer."
        )
    factors = [bound(t, 1.0) for t in ts]
    peak = factors.index(max(factors))
    if min(factors[peak:]) < factors[peak] * (1 - 1e-9):
        rank_zero_warn(
            f"The schedule {schedule!r} decays the LR (per {interval}) under a schedule-free optimizer, whose "
            "averaging replaces the decay: allowed, but unusual (schedule=constant with a warmup is the intended use)."
        )


def _run_length(trainer: pl.Trainer, interval: str) -> int | None:
    """The run's length in ``interval`` units, as :class:`~lrsched_pl.callback.ScheduleCallback` binds it."""
    length = trainer.estimated_stepping_batches if interval == "step" else trainer.max_epochs
    if length is None or length == -1 or length == float("inf"):
        return None
    return int(length)
