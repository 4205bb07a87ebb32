"""The sweep's objective checked against what a run really logs, at its first validation (imports Lightning)."""

from __future__ import annotations

import lightning.pytorch as pl

from lrsched_pl.errors import ConfigValueError


class ObjectiveCheck(pl.Callback):
    """Fails a run at its first validation when ``objective`` is none of the metrics it has logged.

    A sweep ranks its jobs (and Optuna its trials) by ``objective``; a name the model never logs would make every
    job "finish" with no value. The default model's metrics are checked before the sweep starts
    (:func:`lrsched_pl.sweep.check_objective`); a model of your own is checked here.

    Args:
        objective: The metric name, e.g. ``val/loss``.
    """

    def __init__(self, objective: str) -> None:
        self.objective = objective
        self._checked = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self._checked:
            return
        self._checked = True
        logged = sorted(trainer.callback_metrics)
        if self.objective not in logged:
            raise ConfigValueError(
                "objective", self.objective, f"a metric this run logs: {', '.join(logged) or 'none logged yet'}"
            )
