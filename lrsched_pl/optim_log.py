"""TensorBoard curves of a learning-rate-free optimizer's own step size (Prodigy, D-Adaptation).

Prodigy and D-Adaptation estimate a step size ``d`` and move each param group by ``d * lr`` (times Adam's
normalisation), ``lr`` being a multiplier that a schedule may scale (``lr = 1.0`` with cosine is the advice of both
packages). :class:`StepSizeMonitor` logs ``d * lr`` at every optimizer step, next to LearningRateMonitor's ``lr-*``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from typing_extensions import override


class StepSizeMonitor(Callback):
    """Logs ``d * lr`` of every param group that has a ``d`` as ``d*lr-<Optimizer>`` (``/pg<i>`` for several groups).

    Logged in ``on_train_batch_start`` at ``step = trainer.global_step`` (with ``trainer.log_every_n_steps``), as
    LearningRateMonitor logs ``lr-<Optimizer>``: the value at step ``k`` is the ``d * lr`` that optimizer step ``k``
    uses (both packages update ``d`` during a step and apply it from the next one). Without a logger it does nothing.
    """

    @override
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if not trainer.loggers or ((step + 1) % trainer.log_every_n_steps != 0 and not trainer.should_stop):
            return
        metrics = step_sizes(trainer.optimizers)
        if metrics:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)


def step_sizes(optimizers: list[Any]) -> dict[str, float]:
    """``{"d*lr-<Optimizer>[-<n>][/pg<i>]": d * lr}`` for the param groups that carry a step-size estimate ``d``.

    Names follow LearningRateMonitor's: ``-<n>`` tells apart optimizers of the same class, ``/pg<i>`` param groups.
    """
    metrics: dict[str, float] = {}
    seen: dict[str, int] = {}
    for opt in optimizers:
        name = type(opt).__name__
        seen[name] = seen.get(name, 0) + 1
        base = f"d*lr-{name}" + (f"-{seen[name] - 1}" if seen[name] > 1 else "")
        groups = opt.param_groups
        for i, group in enumerate(groups):
            if "d" in group:
                metrics[base + (f"/pg{i + 1}" if len(groups) > 1 else "")] = float(group["d"]) * float(group["lr"])
    return metrics
