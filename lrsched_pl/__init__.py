"""Learning-rate schedules for PyTorch Lightning, chosen and tuned from Hydra configs.

The schedules and the plateau are pure Python; :class:`ScheduleCallback` (the only part that needs Lightning) is
imported on first use, so the command line answers ``--help`` and config errors without loading torch.
"""

from typing import Any

from lrsched_pl.compose import Product, Sequence, Warmup
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.plateau import ReducePlateau
from lrsched_pl.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    Dur,
    ExponentialDecay,
    InverseSqrt,
    LinearDecay,
    MultiStepDecay,
    OneCycle,
    Piecewise,
    PolynomialDecay,
    Schedule,
    StepDecay,
    TimeBasedDecay,
    WarmupStableDecay,
)
from lrsched_pl.values import ScheduledValue

__all__ = [
    "ConfigValueError",
    "Constant",
    "CosineDecay",
    "CosineRestarts",
    "Cyclic",
    "Dur",
    "ExponentialDecay",
    "InverseSqrt",
    "LinearDecay",
    "MultiStepDecay",
    "OneCycle",
    "Piecewise",
    "PolynomialDecay",
    "Product",
    "ReducePlateau",
    "Schedule",
    "ScheduleCallback",
    "ScheduledValue",
    "Sequence",
    "StepDecay",
    "TimeBasedDecay",
    "Warmup",
    "WarmupStableDecay",
]


def __getattr__(name: str) -> Any:
    if name == "ScheduleCallback":
        from lrsched_pl.callback import ScheduleCallback

        return ScheduleCallback
    raise AttributeError(f"module 'lrsched_pl' has no attribute {name!r}")
