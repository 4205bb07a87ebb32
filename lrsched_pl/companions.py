"""The callbacks an optimizer option needs, chosen from its ``_target_`` (``lrsched_pl.run`` adds them)."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

SCHEDULE_FREE = ("schedulefree.",)  # SGDScheduleFree, AdamWScheduleFree, RAdamScheduleFree, ...
LR_FREE = ("prodigyopt.", "dadaptation.")  # Prodigy, DAdaptAdam, DAdaptSGD, ...


def companion_callbacks(cfg: DictConfig, present: list[Callback]) -> list[Callback]:
    """:class:`~lrsched_pl.schedulefree.ScheduleFreeCallback` for a schedule-free ``optimizer``,
    :class:`~lrsched_pl.optim_log.StepSizeMonitor` for a learning-rate-free one, nothing otherwise, nor when
    ``present`` (the run's configured callbacks) already holds one of that class."""
    target = str(cfg.optimizer.get("_target_", ""))
    if target.startswith(SCHEDULE_FREE):
        from lrsched_pl.schedulefree import ScheduleFreeCallback as cls
    elif target.startswith(LR_FREE):
        from lrsched_pl.optim_log import StepSizeMonitor as cls
    else:
        return []
    return [] if any(isinstance(c, cls) for c in present) else [cls()]
