"""Schedules built from schedules: a warmup in front of any schedule, a sequence of schedules, and a product.

A warmup and a sequence hand their inner schedules *local* time (optax ``join_schedules``): the schedule after a
warmup of ``W`` intervals sees ``t - W``, the ``i``-th segment of a sequence sees ``t - boundaries[i - 1]``; and each
inner schedule's default horizon is the time it runs, so ``Warmup(CosineDecay(), 100)`` over a run of ``N`` steps
anneals over the last ``N - 100`` steps, exactly HuggingFace's ``get_cosine_schedule_with_warmup(100, N)``. A product
(torch ``ChainedScheduler``) runs its factors side by side on the same time and multiplies them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from lrsched_pl.errors import ConfigValueError, check_choice, check_float
from lrsched_pl.schedules import Length, Schedule, check_length, resolve_lengths

WARMUP_SHAPES = ("linear", "cosine", "exponential", "1-sqrt")


def warmup_ramp(shape: str, start: float, progress: float) -> float:
    """The warmup's factor at ``progress = t / W`` in [0, 1), from ``start`` (progress 0) towards 1.

    ``linear``, ``cosine`` and ``1-sqrt`` are HuggingFace's ``warmup_type`` (``get_wsd_schedule``), with
    ``start`` as its ``min_lr_ratio``: ``start + (1 - start) * r(p)`` with ``r = p``, ``(1 - cos(pi * p)) / 2`` or
    ``1 - sqrt(1 - p)``. ``exponential`` is geometric, ``start ** (1 - p)``: the LR is multiplied by the same factor
    every interval (optax ``exponential_decay(start * lr0, W, 1 / start)``), so it needs ``start > 0``.
    """
    if shape == "exponential":
        return start ** (1.0 - progress)
    if shape == "cosine":
        ramp = 0.5 * (1.0 - math.cos(math.pi * progress))
    elif shape == "1-sqrt":
        ramp = 1.0 - math.sqrt(1.0 - progress)
    else:
        ramp = progress
    return start + (1.0 - start) * ramp


@dataclass(frozen=True)
class Warmup(Schedule):
    """Warmup from ``start_factor * lr0`` to ``lr0`` over ``length`` intervals, then ``inner``.

    ``lr(t) = lr0 * ramp(t / length)`` for ``t < length``, else ``inner(t - length, lr0)``; the ramp is
    ``start_factor + (1 - start_factor) * t / length`` for the default ``linear`` shape (see :func:`warmup_ramp`
    for ``cosine``, ``1-sqrt`` and ``exponential``).

    Args:
        inner: The schedule that follows, on local time.
        length: Warmup intervals: an int >= 1 or a fraction of the run (:class:`~lrsched_pl.schedules.Dur`).
        start_factor: The first step's share of ``lr0``, in [0, 1] (in (0, 1] for ``exponential``).
        shape: ``linear``, ``cosine``, ``1-sqrt`` (HuggingFace's ``warmup_type``) or ``exponential``.

    Example:
        >>> from lrsched_pl.schedules import Constant
        >>> [Warmup(Constant(), length=4)(t, lr0=1.0) for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    inner: Schedule
    length: Length
    start_factor: float = 0.0
    shape: Literal["linear", "cosine", "exponential", "1-sqrt"] = "linear"

    def __post_init__(self) -> None:
        check_length("warmup", self.length)
        check_warmup_shape(self.shape, self.start_factor)

    @property
    def min_lr(self) -> float:  # type: ignore[override]
        return self.inner.min_lr

    def affine(self, t: int) -> tuple[float, float]:
        if t < self.length:  # type: ignore[operator]
            return warmup_ramp(self.shape, self.start_factor, t / self.length), 0.0  # type: ignore[operator]
        return self.inner.affine(t - self.length)  # type: ignore[operator]

    def bind(self, run: int | None, horizon: int | None = None) -> Warmup:
        bound = resolve_lengths(self, run)
        horizon = run if horizon is None else horizon
        if horizon is not None and bound.length >= horizon:
            raise ConfigValueError("warmup", self.length, f"shorter than the run ({horizon} intervals)")
        rest = None if horizon is None else horizon - bound.length
        return replace(bound, inner=self.inner.bind(run, rest))

    def check_lr(self, lr0: float) -> None:
        self.inner.check_lr(lr0)

    def momentum(self, t: int) -> float | None:
        return None if t < self.length else self.inner.momentum(t - self.length)  # type: ignore[operator]


def check_warmup_shape(shape: object, start_factor: object) -> None:
    """The config keys ``warmup_shape`` and ``warmup_start_factor``, checked together."""
    check_choice("warmup_shape", shape, WARMUP_SHAPES)
    if shape == "exponential":  # a geometric ramp cannot start from 0
        check_float("warmup_start_factor", start_factor, low=0.0, high=1.0, low_open=True)
    else:
        check_float("warmup_start_factor", start_factor, low=0.0, high=1.0)


@dataclass(frozen=True)
class Sequence(Schedule):
    """Runs ``schedules[i]`` from ``boundaries[i - 1]`` to ``boundaries[i]``, each on local time and at its own level.

    ``lr(t) = schedules[i](t - boundaries[i - 1], levels[i] * lr0)`` for ``boundaries[i - 1] <= t < boundaries[i]``
    (optax ``join_schedules``, torch ``SequentialLR``); the last schedule runs to the end of the run. A segment's
    level sets its peak: cosine segments with levels ``1, 0.5, 0.25`` are optax's ``sgdr_schedule`` with those
    per-cycle ``peak_value``s (a segment's ``min_lr`` stays absolute, like sgdr's ``end_value``).

    Args:
        schedules: Two or more schedules.
        boundaries: ``len(schedules) - 1`` strictly increasing times (ints >= 1 or fractions of the run).
        levels: One factor > 0 per schedule, the ``lr0`` each segment runs from as a share of the optimizer's;
            ``None``: 1 for every segment.

    Example:
        >>> from lrsched_pl.schedules import Constant, ExponentialDecay
        >>> s = Sequence((Constant(), ExponentialDecay(gamma=0.5)), boundaries=(2,))
        >>> [s(t, lr0=1.0) for t in range(5)]
        [1.0, 1.0, 1.0, 0.5, 0.25]
    """

    schedules: tuple[Schedule, ...]
    boundaries: tuple[Length, ...]
    levels: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedules", tuple(self.schedules))
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        if self.levels is not None:
            if not isinstance(self.levels, (list, tuple)) or len(self.levels) != len(self.schedules):
                allowed = f"null or a list of {len(self.schedules)} factors > 0, one per schedule"
                raise ConfigValueError("levels", self.levels, allowed)
            object.__setattr__(self, "levels", tuple(self.levels))
            for i, level in enumerate(self.levels):
                check_float(f"levels[{i}]", level, low=0.0, low_open=True)
        if len(self.schedules) < 2:
            raise ConfigValueError("schedules", len(self.schedules), "a list of at least 2 schedules")
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ConfigValueError(
                "boundaries", list(self.boundaries), f"{len(self.schedules) - 1} times, one fewer than the schedules"
            )
        for i, b in enumerate(self.boundaries):
            check_length(f"boundaries[{i}]", b)
        ints = [b for b in self.boundaries if isinstance(b, int)]
        if len(ints) == len(self.boundaries) and any(b <= a for a, b in zip(ints, ints[1:])):
            raise ConfigValueError("boundaries", list(self.boundaries), "strictly increasing")

    def _segment(self, t: int) -> tuple[int, int]:
        """The index of the segment running at ``t`` and its local time."""
        start = 0
        for i, boundary in enumerate(self.boundaries):
            if t < boundary:  # type: ignore[operator]
                return i, t - start
            start = boundary  # type: ignore[assignment]
        return len(self.schedules) - 1, t - start

    def affine(self, t: int) -> tuple[float, float]:
        i, local = self._segment(t)
        scale, shift = self.schedules[i].affine(local)
        return (scale if self.levels is None else scale * self.levels[i]), shift

    def momentum(self, t: int) -> float | None:
        i, local = self._segment(t)
        return self.schedules[i].momentum(local)

    def bind(self, run: int | None, horizon: int | None = None) -> Sequence:
        bound = resolve_lengths(self, run)
        horizon = run if horizon is None else horizon
        edges = [0, *bound.boundaries, horizon]
        inner = tuple(
            s.bind(run, None if end is None else end - start) for s, start, end in zip(self.schedules, edges, edges[1:])
        )
        if horizon is not None and bound.boundaries[-1] >= horizon:
            raise ConfigValueError("boundaries", list(bound.boundaries), f"within the run ({horizon} intervals)")
        return replace(bound, schedules=inner)

    def check_lr(self, lr0: float) -> None:
        for i, schedule in enumerate(self.schedules):
            schedule.check_lr(lr0 if self.levels is None else lr0 * self.levels[i])


def absolute_lr(schedule: Schedule) -> str | None:
    """The key that makes ``schedule`` (or a schedule inside it) set an absolute LR (``min_lr``, ``max_lr``), if any."""
    if getattr(schedule, "max_lr", None) is not None:
        return "max_lr"
    if not isinstance(schedule, (Warmup, Sequence, Product)) and schedule.min_lr != 0:
        return "min_lr"
    inner = [getattr(schedule, "inner", None), *getattr(schedule, "schedules", ())]
    return next((key for s in inner if s is not None and (key := absolute_lr(s)) is not None), None)


@dataclass(frozen=True)
class Product(Schedule):
    """The product of schedules' factors, each on the run's own time (torch ``ChainedScheduler``).

    ``lr(t) = lr0 * factor_1(t) * factor_2(t) * ...``: e.g. a cosine envelope over warm restarts, or a step decay
    on top of a cyclic schedule. Each factor is a share of ``lr0``, so schedules that set an absolute LR (a
    ``min_lr`` floor, an absolute ``max_lr``) cannot be factors. The momentum, if cycled, is the first factor's that
    cycles it.

    Args:
        schedules: Two or more schedules, none with a ``min_lr`` or ``max_lr``.

    Example:
        >>> from lrsched_pl.schedules import ExponentialDecay, StepDecay
        >>> s = Product((StepDecay(step_size=2, gamma=0.5), ExponentialDecay(gamma=0.5)))
        >>> [s(t, lr0=1.0) for t in range(4)]
        [1.0, 0.5, 0.125, 0.0625]
    """

    schedules: tuple[Schedule, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedules", tuple(self.schedules))
        if len(self.schedules) < 2:
            raise ConfigValueError("schedules", len(self.schedules), "a list of at least 2 schedules")
        for i, schedule in enumerate(self.schedules):
            key = absolute_lr(schedule)
            if key is not None:
                raise ConfigValueError(
                    f"schedules[{i}].{key}", getattr(schedule, key, "set"),
                    "0/null in a product, whose factors are shares of lr0 (put a floor on the whole run with a "
                    "sequence or a plateau instead)",
                )  # fmt: skip

    def affine(self, t: int) -> tuple[float, float]:
        scale = 1.0
        for schedule in self.schedules:
            scale *= schedule.affine(t)[0]
        return scale, 0.0

    def momentum(self, t: int) -> float | None:
        return next((m for s in self.schedules if (m := s.momentum(t)) is not None), None)

    def bind(self, run: int | None, horizon: int | None = None) -> Product:
        return replace(self, schedules=tuple(s.bind(run, horizon) for s in self.schedules))

    def check_lr(self, lr0: float) -> None:
        for schedule in self.schedules:
            schedule.check_lr(lr0)
