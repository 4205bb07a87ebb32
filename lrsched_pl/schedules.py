"""Pure learning-rate schedules: functions of time, with no Trainer, optimizer or hidden counter.

Time ``t`` is an integer count of intervals (optimizer steps or completed epochs) since the start of
training, starting at 0. A schedule maps ``t`` and a param group's configured learning rate ``lr0`` to the
learning rate that group uses at ``t``::

    lr(t) = min_lr + (lr0 - min_lr) * factor(t)

``factor`` is the dimensionless shape of the schedule (1 at ``t = 0`` for every decay here) and ``min_lr`` an
absolute floor (0 unless the schedule has one). Every param group is scaled by the same ``factor``, so the ratios
between groups survive. Internally a schedule is evaluated once per ``t`` as the affine map
``lr = scale * lr0 + shift`` (:meth:`Schedule.affine`), which the callback then applies to every group.

Example:
    >>> sched = StepDecay(step_size=2, gamma=0.5)
    >>> [sched(t, lr0=0.1) for t in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import typing
from dataclasses import dataclass, replace
from functools import cache, cached_property
from typing import Any, Literal, Union

from lrsched_pl.errors import ConfigValueError, check_choice, check_float, check_int


@dataclass(frozen=True)
class Dur:
    """A length given as a fraction of the whole run; written ``0.25dur`` in configs and on the command line.

    It resolves to ``ceil(fraction * run_length)`` intervals when training starts (ceil, as HuggingFace's
    ``warmup_ratio`` does), the run length being ``trainer.estimated_stepping_batches`` for the step interval and
    ``trainer.max_epochs`` for the epoch interval.

    Args:
        fraction: The share of the run, in (0, 1].
    """

    fraction: float

    def __post_init__(self) -> None:
        check_float("fraction", self.fraction, low=0.0, high=1.0, low_open=True)

    def resolve(self, run: int) -> int:
        return math.ceil(self.fraction * run - 1e-9)

    def __str__(self) -> str:
        return f"{self.fraction:g}dur"

    @classmethod
    def parse(cls, key: str, value: object) -> object:
        """``"0.25dur"`` -> ``Dur(0.25)``; anything else is returned unchanged for the schedule to check."""
        if not (isinstance(value, str) and value.endswith("dur")):
            return value
        try:
            fraction = float(value[: -len("dur")])
        except ValueError:
            fraction = math.nan
        if not 0.0 < fraction <= 1.0:
            raise ConfigValueError(key, value, "a fraction of the run in (0, 1] followed by `dur`, e.g. 0.25dur")
        return cls(fraction)


Length = Union[int, Dur, str]  # a str is a fraction of the run, "0.25dur", parsed into a Dur on construction


def check_length(key: str, value: object, low: int = 1) -> None:
    """Requires an int >= ``low`` or a :class:`Dur` (a fraction of the run, checked once it resolves)."""
    if isinstance(value, Dur):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigValueError(key, value, f"an int >= {low} or a fraction of the run such as 0.25dur")


def resolve_lengths(schedule: Schedule, run: int | None) -> Schedule:
    """``schedule`` with every :class:`Dur` field (and Dur inside tuple fields) resolved against ``run``."""
    changes = {}
    for f in dataclasses.fields(schedule):  # type: ignore[arg-type]
        value = getattr(schedule, f.name)
        if isinstance(value, tuple) and any(isinstance(v, Dur) for v in value):
            changes[f.name] = tuple(_resolve(f.name, v, run) for v in value)
        elif isinstance(value, Dur):
            changes[f.name] = _resolve(f.name, value, run)
    return replace(schedule, **changes) if changes else schedule  # type: ignore[type-var]


def _resolve(key: str, value: object, run: int | None) -> object:
    if not isinstance(value, Dur):
        return value
    if run is None:
        raise ConfigValueError(key, str(value), "an int when the run has no fixed length (set trainer.max_epochs)")
    return value.resolve(run)


@cache
def _field_kinds(cls: type) -> tuple[tuple[str, str], ...]:
    """``(field, kind)`` for the init fields of a schedule class that need preparing: ``length``, ``lengths``
    (a tuple of lengths), ``tuple`` or ``bool``."""
    hints = typing.get_type_hints(cls)
    kinds = []
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        if not f.init or hint is None:
            continue
        args = typing.get_args(hint)
        if typing.get_origin(hint) is tuple:
            kinds.append((f.name, "lengths" if args and _mentions(args[0], Dur) else "tuple"))
        elif _mentions(hint, Dur):
            kinds.append((f.name, "length"))
        elif hint is bool:
            kinds.append((f.name, "bool"))
    return tuple(kinds)


def _mentions(hint: Any, target: type) -> bool:
    return hint is target or any(_mentions(a, target) for a in typing.get_args(hint))


def _prepare_fields(schedule: Schedule) -> None:
    """Parses ``"0.25dur"`` strings into :class:`Dur`, lists into tuples, and refuses non-bool flags, in place.

    Runs before a schedule class's own ``__post_init__`` checks, so Python callers, Hydra configs and LightningCLI
    (which passes strings through ``Length``'s ``str``) all get the same values and the same errors.
    """
    for key, kind in _field_kinds(type(schedule)):
        value = getattr(schedule, key)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigValueError(key, value, "true or false")
            continue
        if kind in ("tuple", "lengths"):
            if not isinstance(value, (tuple, list)):
                raise ConfigValueError(key, value, "a list")
            value = tuple(Dur.parse(f"{key}[{i}]", v) if kind == "lengths" else v for i, v in enumerate(value))
        else:
            value = Dur.parse(key, value)
        object.__setattr__(schedule, key, value)


class Schedule:
    """Base class of every schedule.

    Subclasses are frozen dataclasses that define :meth:`factor`; those with an absolute floor declare a
    ``min_lr`` field. Subclasses whose default length depends on the run override :meth:`bind`; compositions
    (:mod:`lrsched_pl.compose`) and schedules that are not of the ``min_lr + (lr0 - min_lr) * factor`` form
    override :meth:`affine` instead. A subclass's ``__post_init__`` sees its fields prepared: lengths given as
    ``"0.25dur"`` are :class:`Dur`, lists are tuples, flags are bools (:func:`_prepare_fields`).
    """

    min_lr: float = 0.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        inherited = getattr(cls, "__post_init__", None) if own is None else None

        def __post_init__(self: Schedule) -> None:
            _prepare_fields(self)
            if own is not None:
                own(self)
            elif inherited is not None:
                inherited(self)

        cls.__post_init__ = __post_init__  # type: ignore[attr-defined]

    def factor(self, t: int) -> float:
        """The schedule's shape at time ``t``: ``lr = min_lr + (lr0 - min_lr) * factor(t)``."""
        raise NotImplementedError

    def affine(self, t: int) -> tuple[float, float]:
        """Returns ``(scale, shift)`` such that the learning rate at ``t`` is ``scale * lr0 + shift``."""
        f = self.factor(t)
        return f, self.min_lr * (1.0 - f)

    def momentum(self, t: int) -> float | None:
        """The momentum (SGD) or beta1 (Adam-like) to set at ``t``; ``None`` leaves the optimizer's own."""
        return None

    def __call__(self, t: int, lr0: float) -> float:
        """The learning rate at time ``t`` of a param group configured with ``lr0``."""
        scale, shift = self.affine(t)
        return scale * lr0 + shift

    def bind(self, run: int | None, horizon: int | None = None) -> Schedule:
        """Resolves what depends on the run: :class:`Dur` fractions and default lengths.

        Args:
            run: The whole run's length in intervals (``None``: unknown); fractions resolve against it.
            horizon: The intervals this schedule itself spans, its default length (e.g. the run minus a
                warmup); defaults to ``run``.

        Returns:
            A schedule with every length an int; ``self`` when nothing depends on the run.
        """
        return resolve_lengths(self, run)

    def check_lr(self, lr0: float) -> None:
        """Raises ``ConfigValueError`` if the schedule cannot run from an initial LR of ``lr0``."""
        if self.min_lr > lr0:
            raise ConfigValueError("min_lr", self.min_lr, f"at most the optimizer's lr ({lr0})")


@dataclass(frozen=True)
class Constant(Schedule):
    """The no-decay baseline: ``lr(t) = lr0``."""

    def factor(self, t: int) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDecay(Schedule):
    """Multiplies the LR by ``gamma`` every ``step_size`` intervals (torch ``StepLR``), down to a floor or up to a
    ceiling ``end_factor`` (optax ``exponential_decay(staircase=True, end_value=end_factor * lr0)``).

    ``lr(t) = lr0 * clip(gamma ** floor(t / step_size), end_factor)``: the factor stops at ``end_factor``, a floor
    when ``gamma < 1`` and a ceiling when ``gamma > 1`` (growth needs one, so the LR cannot overflow).

    Args:
        step_size: Intervals between two decays, an int >= 1.
        gamma: Factor applied at each decay, in (0, 1]: 0.5 halves the LR, 0.1 divides it by ten; > 1 (growth)
            with an ``end_factor``.
        end_factor: The factor the LR stops at, > 0: at most 1 when ``gamma < 1``, at least 1 when ``gamma > 1``;
            ``None``: no bound.

    Example:
        >>> [StepDecay(step_size=2, gamma=2.0, end_factor=3.0)(t, lr0=1.0) for t in range(6)]
        [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    """

    step_size: Length = 10
    gamma: float = 0.5
    end_factor: float | None = None

    def __post_init__(self) -> None:
        check_length("step_size", self.step_size)
        _check_gamma_end(self.gamma, self.end_factor)

    def factor(self, t: int) -> float:
        return _clipped_power(self.gamma, t // self.step_size, self.end_factor)  # type: ignore[operator]


@dataclass(frozen=True)
class MultiStepDecay(Schedule):
    """Multiplies the LR by ``gamma`` at each milestone (torch ``MultiStepLR``).

    ``lr(t) = lr0 * gamma ** (number of milestones <= t)``

    Args:
        milestones: Strictly increasing times (ints >= 1) at which the LR decays.
        gamma: Factor applied at each milestone, in (0, 1].
    """

    milestones: tuple[Length, ...] = (10, 15)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if not self.milestones:
            raise ConfigValueError("milestones", [], "a non-empty list of strictly increasing ints >= 1")
        for i, m in enumerate(self.milestones):
            check_length(f"milestones[{i}]", m)
        if all(isinstance(m, int) for m in self.milestones) and any(
            b <= a for a, b in zip(self.milestones, self.milestones[1:])
        ):
            raise ConfigValueError("milestones", list(self.milestones), "strictly increasing")
        check_float("gamma", self.gamma, low=0.0, high=1.0, low_open=True)

    def factor(self, t: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, t)


def _check_gamma_end(gamma: float, end_factor: float | None) -> None:
    """``gamma`` in (0, 1] alone; any ``gamma > 0`` with an ``end_factor`` on the side the factor moves to."""
    if end_factor is None:
        check_float("gamma", gamma, low=0.0, high=1.0, low_open=True)
        return
    check_float("gamma", gamma, low=0.0, low_open=True)
    if gamma > 1.0:
        check_float("end_factor", end_factor, low=1.0)  # a ceiling for growth
    else:
        check_float("end_factor", end_factor, low=0.0, high=1.0, low_open=True)  # a floor for decay


def _clipped_power(gamma: float, n: int, end_factor: float | None) -> float:
    """``gamma ** n`` stopped at ``end_factor`` (optax ``exponential_decay``'s ``end_value`` clipping), without
    overflow: growth reaches its ceiling before ``gamma ** n`` leaves the floats."""
    if end_factor is None:
        return gamma**n
    if gamma > 1.0:
        return end_factor if n * math.log(gamma) >= math.log(end_factor) else min(gamma**n, end_factor)
    return max(gamma**n, end_factor)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """Multiplies the LR by ``gamma`` every interval (torch ``ExponentialLR``), down to a floor or up to a ceiling
    ``end_factor`` (optax ``exponential_decay(transition_steps=1, end_value=end_factor * lr0)``).

    ``lr(t) = lr0 * clip(gamma ** t, end_factor)``: a floor when ``gamma < 1``, a ceiling when ``gamma > 1``.

    Args:
        gamma: Factor per interval, in (0, 1]; > 1 (growth) with an ``end_factor``.
        end_factor: The factor the LR stops at, > 0: at most 1 when ``gamma < 1``, at least 1 when ``gamma > 1``;
            ``None``: no bound.

    Example:
        >>> [ExponentialDecay(gamma=0.5, end_factor=0.2)(t, lr0=1.0) for t in range(4)]
        [1.0, 0.5, 0.25, 0.2]
    """

    gamma: float = 0.9
    end_factor: float | None = None

    def __post_init__(self) -> None:
        _check_gamma_end(self.gamma, self.end_factor)

    def factor(self, t: int) -> float:
        return _clipped_power(self.gamma, t, self.end_factor)


@dataclass(frozen=True)
class TimeBasedDecay(Schedule):
    """Keras' time-based (inverse-time) decay.

    ``lr(t) = lr0 / (1 + decay * t / decay_steps)``, with ``floor(t / decay_steps)`` when ``staircase``.
    With ``decay_steps=1`` and the step interval this is the legacy Keras optimizer argument
    ``lr0 / (1 + decay * iterations)``; with the epoch interval it is ``lr0 / (1 + decay * epoch)``.

    Args:
        decay: Decay rate, a finite float >= 0 (0 keeps the LR constant).
        decay_steps: Intervals per unit of decay, an int >= 1.
        staircase: Decay in discrete jumps every ``decay_steps`` intervals.
    """

    decay: float = 0.01
    decay_steps: Length = 1
    staircase: bool = False

    def __post_init__(self) -> None:
        check_float("decay", self.decay, low=0.0)
        check_length("decay_steps", self.decay_steps)

    def factor(self, t: int) -> float:
        p = t // self.decay_steps if self.staircase else t / self.decay_steps
        return 1.0 / (1.0 + self.decay * p)


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Cosine annealing from ``lr0`` to ``min_lr`` over ``total`` intervals (torch ``CosineAnnealingLR``), the
    cosine raised to ``exponent`` (optax ``cosine_decay_schedule(alpha=min_lr / lr0, exponent=exponent)``).

    ``lr(t) = min_lr + (lr0 - min_lr) * ((1 + cos(pi * min(t, T) / T)) / 2) ** exponent`` with ``T = total``; the
    LR stays at ``min_lr`` after ``T`` (torch's ``CosineAnnealingLR`` climbs back up instead).

    Args:
        min_lr: The absolute LR reached at ``T``, a float >= 0.
        total: ``T`` in intervals, an int >= 1; ``None`` means the whole run (see :meth:`bind`).
        exponent: The power on the cosine, > 0: 1 is torch's curve, 2 falls faster early on.

    Example:
        >>> [round(CosineDecay(total=4, exponent=2.0)(t, lr0=1.0), 4) for t in range(5)]
        [1.0, 0.7286, 0.25, 0.0214, 0.0]
    """

    min_lr: float = 0.0
    total: Length | None = None
    exponent: float = 1.0

    def __post_init__(self) -> None:
        check_float("min_lr", self.min_lr, low=0.0)
        if self.total is not None:
            check_length("total", self.total)
        check_float("exponent", self.exponent, low=0.0, low_open=True)

    def bind(self, run: int | None, horizon: int | None = None) -> CosineDecay:
        return _bind_total(self, run, horizon)  # type: ignore[return-value]

    def factor(self, t: int) -> float:
        total = _total(self)
        return (0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))) ** self.exponent


# ---------------------------------------------------------------------------------------------------------------
# The schedule library: linear, polynomial, cosine with restarts, one-cycle, cyclic, inverse square root,
# warmup-stable-decay and piecewise constant. Each equals its reference (torch, Keras or HuggingFace) step by step.
# ---------------------------------------------------------------------------------------------------------------


def _parse_dur_strings(schedule: Schedule, *keys: str) -> None:
    """Turns ``"0.25dur"`` strings in the length fields ``keys`` into :class:`Dur`, in place (``__post_init__``).

    Run-relative defaults are written as such strings because a Hydra schema's default must be a plain value.
    """
    for key in keys:
        value = getattr(schedule, key)
        if isinstance(value, (tuple, list)):
            value = tuple(Dur.parse(f"{key}[{i}]", v) for i, v in enumerate(value))
        else:
            value = Dur.parse(key, value)
        object.__setattr__(schedule, key, value)


def _check_total(schedule: Schedule) -> None:
    """Parses and checks an optional ``total`` (``None``: the rest of the run, set by :func:`_bind_total`)."""
    _parse_dur_strings(schedule, "total")
    if schedule.total is not None:  # type: ignore[attr-defined]
        check_length("total", schedule.total)  # type: ignore[attr-defined]


def _bind_total(schedule: Schedule, run: int | None, horizon: int | None) -> Schedule:
    """``schedule`` with its lengths resolved and an unset ``total`` filled with ``horizon`` (default ``run``)."""
    bound = resolve_lengths(schedule, run)
    if bound.total is not None:  # type: ignore[attr-defined]
        return bound
    horizon = run if horizon is None else horizon
    if horizon is None or horizon < 1:
        raise ConfigValueError(
            "total", horizon, "set when the run has no fixed length (or set `trainer.max_epochs`/`max_steps`)"
        )
    return replace(bound, total=int(horizon))  # type: ignore[type-var]


def _total(schedule: Schedule) -> int:
    total = schedule.total  # type: ignore[attr-defined]
    if not isinstance(total, int):
        raise RuntimeError(f"{type(schedule).__name__}.total is unset: call `bind(run_length)` first.")
    return total


def _check_momenta(base: float, high: float) -> None:
    check_float("base_momentum", base, low=0.0, high=1.0, high_open=True)
    check_float("max_momentum", high, low=0.0, high=1.0, high_open=True)
    if high < base:
        raise ConfigValueError("max_momentum", high, f"at least `base_momentum` ({base})")


@dataclass(frozen=True)
class LinearDecay(Schedule):
    """Linear interpolation of the factor from ``start_factor`` to ``end_factor`` (torch ``LinearLR``; growth past
    ``lr0``, ``end_factor > 1``, is optax ``linear_schedule(lr0 * start_factor, lr0 * end_factor, T)``).

    ``lr(t) = lr0 * (start_factor + (end_factor - start_factor) * min(t, T) / T)`` with ``T = total``.

    Args:
        start_factor: The factor at ``t = 0``, in (0, 1].
        end_factor: The factor from ``T`` on, a finite number >= 0 (above 1 the LR grows past ``lr0``).
        total: ``T`` in intervals, an int >= 1 or a fraction of the run; ``None`` means the rest of the run.

    Example:
        >>> [LinearDecay(total=4)(t, lr0=1.0) for t in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """

    start_factor: float = 1.0
    end_factor: float = 0.0
    total: Length | None = None

    def __post_init__(self) -> None:
        check_float("start_factor", self.start_factor, low=0.0, high=1.0, low_open=True)
        check_float("end_factor", self.end_factor, low=0.0)
        _check_total(self)

    def bind(self, run: int | None, horizon: int | None = None) -> Schedule:
        return _bind_total(self, run, horizon)

    def factor(self, t: int) -> float:
        total = _total(self)
        return self.start_factor + (self.end_factor - self.start_factor) * min(total, t) / total


@dataclass(frozen=True)
class PolynomialDecay(Schedule):
    """Polynomial decay from ``lr0`` to ``min_lr`` (Keras ``PolynomialDecay``; torch ``PolynomialLR`` if min_lr=0).

    ``lr(t) = (lr0 - min_lr) * (1 - min(t, T) / T) ** power + min_lr`` with ``T = total``; with ``cycle``,
    ``T`` becomes ``total * ceil(t / total)`` (``total`` at ``t = 0``) and the decay restarts from a lower peak.

    Args:
        power: The exponent, > 0 (1 is linear, 0.5 square root).
        min_lr: The absolute LR reached at ``T`` (Keras ``end_learning_rate``), >= 0.
        total: ``T`` in intervals, an int >= 1 or a fraction of the run; ``None`` means the rest of the run.
        cycle: Decay again over each next multiple of ``total`` instead of holding ``min_lr``.

    Example:
        >>> [PolynomialDecay(power=2.0, total=4)(t, lr0=1.0) for t in range(6)]
        [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """

    power: float = 1.0
    min_lr: float = 0.0
    total: Length | None = None
    cycle: bool = False

    def __post_init__(self) -> None:
        check_float("power", self.power, low=0.0, low_open=True)
        check_float("min_lr", self.min_lr, low=0.0)
        _check_total(self)

    def bind(self, run: int | None, horizon: int | None = None) -> Schedule:
        return _bind_total(self, run, horizon)

    def factor(self, t: int) -> float:
        total = _total(self)
        if self.cycle:
            span = total * max(1, math.ceil(t / total))
        else:
            span, t = total, min(t, total)
        return (1.0 - t / span) ** self.power


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (torch ``CosineAnnealingWarmRestarts``, Keras ``CosineDecayRestarts``).

    Period ``i`` (from 0) lasts ``T_i = period * period_mult ** i`` intervals; at local time ``t_cur`` in it,
    ``lr(t) = min_lr + (lr0 - min_lr) * peak_decay ** i * (1 + cos(pi * t_cur / T_i)) / 2``.
    With ``peak_decay = 1`` this is torch's ``CosineAnnealingWarmRestarts(T_0=period, T_mult=period_mult,
    eta_min=min_lr)``; with ``min_lr = alpha * lr0`` it is Keras' ``CosineDecayRestarts(lr0, period,
    t_mul=period_mult, m_mul=peak_decay, alpha)``. The schedule is periodic: it never settles.

    Args:
        period: The first period ``T_0`` in intervals, an int >= 1 or a fraction of the run (default a quarter
            of the run: four cycles when ``period_mult = 1``).
        period_mult: The factor by which each period is longer than the last, an int >= 1.
        min_lr: The absolute LR at the end of every period, >= 0.
        peak_decay: The factor on the amplitude after each restart (Keras ``m_mul``), in (0, 1].

    Example:
        >>> [round(CosineRestarts(period=2, peak_decay=0.5)(t, lr0=1.0), 3) for t in range(6)]
        [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    """

    period: Length = Dur(0.25)
    period_mult: int = 1
    min_lr: float = 0.0
    peak_decay: float = 1.0

    def __post_init__(self) -> None:
        _parse_dur_strings(self, "period")
        check_length("period", self.period)
        check_int("period_mult", self.period_mult, low=1)
        check_float("min_lr", self.min_lr, low=0.0)
        check_float("peak_decay", self.peak_decay, low=0.0, high=1.0, low_open=True)

    def _position(self, t: int) -> tuple[int, int, int]:
        """``(restarts so far, t_cur, T_i)`` at ``t``, in exact integer arithmetic."""
        length = self.period
        if self.period_mult == 1:
            restarts, t_cur = divmod(t, length)  # type: ignore[operator]
            return restarts, t_cur, length  # type: ignore[return-value]
        restarts = 0
        while t >= length:  # type: ignore[operator]
            t -= length  # type: ignore[operator]
            length *= self.period_mult  # type: ignore[operator]
            restarts += 1
        return restarts, t, length  # type: ignore[return-value]

    def factor(self, t: int) -> float:
        restarts, t_cur, length = self._position(t)
        return self.peak_decay**restarts * (1 + math.cos(math.pi * t_cur / length)) / 2


def _anneal(start: float, end: float, pct: float, how: str) -> float:
    """torch ``OneCycleLR``'s interpolation from ``start`` (pct 0) to ``end`` (pct 1)."""
    if how == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


@dataclass(frozen=True)
class OneCycle(Schedule):
    """The 1cycle policy (torch ``OneCycleLR``): up from ``max_lr / div_factor`` to ``max_lr``, then down to
    ``max_lr / div_factor / final_div_factor``, with momentum cycled the other way.

    Over ``T = total`` intervals, phase one ends at ``pct_start * T - 1`` and the last at ``T - 1``; each phase
    anneals (``cos``: ``end + (start - end) * (1 + cos(pi * pct)) / 2``, or ``linear``) between its two values,
    ``pct`` being the position in the phase. ``three_phase`` adds torch's symmetric descent back to the initial LR
    before the final annihilation. After ``T - 1`` the LR stays at its final value (torch raises at ``T + 1``).

    Args:
        max_lr: The peak LR, absolute for every param group; ``None`` means each group's own ``lr0``
            (``lr = lr0 * shape(t)``, so ratios between groups survive).
        total: ``T`` in intervals, an int >= 1 or a fraction of the run; ``None`` means the rest of the run.
        pct_start: The share of ``T`` spent rising, in (0, 1) (in (0, 0.5] with ``three_phase``).
        div_factor: ``max_lr / initial LR``, > 0.
        final_div_factor: ``initial LR / final LR``, > 0.
        anneal: ``cos`` or ``linear``.
        three_phase: Use torch's three-phase variant (the original paper's shape).
        cycle_momentum: Cycle the momentum (SGD ``momentum``, Adam-like ``betas[0]``) inversely to the LR.
        base_momentum: The momentum at the LR's peak, in [0, 1).
        max_momentum: The momentum at the start and end, in [``base_momentum``, 1).

    Example:
        >>> s = OneCycle(total=5, pct_start=0.4, div_factor=10.0, final_div_factor=10.0, anneal="linear")
        >>> [round(s(t, lr0=1.0), 4) for t in range(6)]
        [0.1, 1.0, 0.67, 0.34, 0.01, 0.01]
    """

    max_lr: float | None = None
    total: Length | None = None
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: Literal["cos", "linear"] = "cos"
    three_phase: bool = False
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    def __post_init__(self) -> None:
        if self.max_lr is not None:
            check_float("max_lr", self.max_lr, low=0.0, low_open=True)
        _check_total(self)
        # three phases need the rise and the symmetric fall to fit in the cycle
        high = 0.5 if self.three_phase else 1.0
        check_float("pct_start", self.pct_start, low=0.0, high=high, low_open=True, high_open=not self.three_phase)
        check_float("div_factor", self.div_factor, low=0.0, low_open=True)
        check_float("final_div_factor", self.final_div_factor, low=0.0, low_open=True)
        check_choice("anneal", self.anneal, ("cos", "linear"))
        _check_momenta(self.base_momentum, self.max_momentum)
        if isinstance(self.total, int) and self.pct_start * self.total <= 1:
            # torch divides by zero at pct_start * total == 1; below it the LR would never rise
            raise ConfigValueError("total", self.total, f"> 1 / pct_start = {1 / self.pct_start:g} intervals")

    def bind(self, run: int | None, horizon: int | None = None) -> Schedule:
        return _bind_total(self, run, horizon)

    @cached_property
    def _ends(self) -> tuple[float, ...]:
        """The last interval of each phase, as torch computes them (once per bound schedule)."""
        total = _total(self)
        ends = [float(self.pct_start * total) - 1, float(2 * self.pct_start * total) - 2, total - 1]
        return tuple(ends if self.three_phase else ends[:1] + ends[2:])

    @cached_property
    def _levels(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The LR (as a share of the peak) and the momentum at each phase boundary."""
        initial = 1.0 / self.div_factor
        lrs = [initial, 1.0, initial, initial / self.final_div_factor]
        momenta = [self.max_momentum, self.base_momentum, self.max_momentum, self.max_momentum]
        if not self.three_phase:
            del lrs[2], momenta[2]
        return tuple(lrs), tuple(momenta)

    def _phase(self, t: int) -> tuple[int, float]:
        """The phase index at ``t`` (clamped to the last interval) and the position in it, as torch computes."""
        ends = self._ends
        t = min(t, ends[-1])
        start = 0.0
        for i, end in enumerate(ends[:-1]):
            if t <= end:
                return i, (t - start) / (end - start)
            start = end
        return len(ends) - 1, (t - start) / (ends[-1] - start)

    def factor(self, t: int) -> float:
        """The LR as a share of the peak."""
        levels = self._levels[0]
        i, pct = self._phase(t)
        return _anneal(levels[i], levels[i + 1], pct, self.anneal)

    def affine(self, t: int) -> tuple[float, float]:
        if self.max_lr is None:
            return self.factor(t), 0.0
        return 0.0, self.max_lr * self.factor(t)

    def momentum(self, t: int) -> float | None:
        if not self.cycle_momentum:
            return None
        levels = self._levels[1]
        i, pct = self._phase(t)
        return _anneal(levels[i], levels[i + 1], pct, self.anneal)


@dataclass(frozen=True)
class Cyclic(Schedule):
    """Cyclical learning rates (torch ``CyclicLR``): triangles between ``min_lr`` and the peak.

    A cycle rises for ``step_size_up`` intervals and falls for ``step_size_down``; with ``h(t)`` the triangle's
    height in [0, 1], ``lr(t) = min_lr + (peak - min_lr) * h(t) * s`` where ``s`` is 1 (``triangular``),
    ``1 / 2 ** (cycle - 1)`` (``triangular2``, cycle counted from 1) or ``gamma ** t`` (``exp_range``), and
    ``peak`` is ``max_lr`` or, when that is ``None``, each group's ``lr0``. The momentum goes the other way:
    ``max_momentum - (max_momentum - base_momentum) * h(t) * s``. The schedule is periodic.

    Args:
        min_lr: The absolute LR at the start of each cycle (torch ``base_lr``), >= 0.
        max_lr: The absolute peak for every param group (> ``min_lr``); ``None`` means each group's ``lr0``.
        step_size_up: Intervals of the rising half, an int >= 1 or a fraction of the run.
        step_size_down: Intervals of the falling half; ``None`` means ``step_size_up``.
        mode: ``triangular``, ``triangular2`` or ``exp_range``.
        gamma: The per-interval factor of ``exp_range``, in (0, 1].
        cycle_momentum: Cycle the momentum (SGD ``momentum``, Adam-like ``betas[0]``) inversely to the LR.
        base_momentum: The momentum at the LR's peak, in [0, 1).
        max_momentum: The momentum at ``min_lr``, in [``base_momentum``, 1).

    Example:
        >>> [Cyclic(step_size_up=2, mode="triangular2")(t, lr0=1.0) for t in range(9)]
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.25, 0.5, 0.25, 0.0]
    """

    min_lr: float = 0.0
    max_lr: float | None = None
    step_size_up: Length = Dur(0.1)
    step_size_down: Length | None = None
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular"
    gamma: float = 1.0
    cycle_momentum: bool = True
    base_momentum: float = 0.8
    max_momentum: float = 0.9

    def __post_init__(self) -> None:
        check_float("min_lr", self.min_lr, low=0.0)
        if self.max_lr is not None:  # equal to min_lr it would be a constant LR (0 with the default min_lr)
            check_float("max_lr", self.max_lr, low=self.min_lr, low_open=True)
        _parse_dur_strings(self, "step_size_up", "step_size_down")
        check_length("step_size_up", self.step_size_up)
        if self.step_size_down is not None:
            check_length("step_size_down", self.step_size_down)
        check_choice("mode", self.mode, ("triangular", "triangular2", "exp_range"))
        check_float("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        _check_momenta(self.base_momentum, self.max_momentum)

    def factor(self, t: int) -> float:
        """``h(t) * s``: the share of the amplitude at ``t``, computed as torch does."""
        up = float(self.step_size_up)  # type: ignore[arg-type]
        down = up if self.step_size_down is None else float(self.step_size_down)  # type: ignore[arg-type]
        size = up + down
        ratio = up / size
        cycle = math.floor(1 + t / size)
        x = 1.0 + t / size - cycle
        height = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        if self.mode == "triangular2":
            return height * (1 / (2.0 ** (cycle - 1)))
        if self.mode == "exp_range":
            return height * self.gamma**t
        return height

    def affine(self, t: int) -> tuple[float, float]:
        if self.max_lr is None:
            return super().affine(t)
        return 0.0, self.min_lr + (self.max_lr - self.min_lr) * self.factor(t)

    def momentum(self, t: int) -> float | None:
        if not self.cycle_momentum:
            return None
        return self.max_momentum - (self.max_momentum - self.base_momentum) * self.factor(t)

    def check_lr(self, lr0: float) -> None:
        if self.max_lr is None:  # with an absolute max_lr, lr0 plays no part
            super().check_lr(lr0)


@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """Inverse square-root decay (HuggingFace ``get_inverse_sqrt_schedule`` after its warmup).

    ``lr(t) = lr0 / sqrt((t + timescale) / timescale)``. HuggingFace's warmup is not part of it: use
    ``Warmup(InverseSqrt(timescale), W)``, which equals ``get_inverse_sqrt_schedule(W, timescale)`` step by step.
    The config layer sets ``timescale`` to the warmup length when it is ``None`` (HuggingFace's default).

    Args:
        timescale: Intervals over which the LR falls to ``lr0 / sqrt(2)``, an int >= 1 or a fraction of the run;
            ``None`` means 10 000.

    Example:
        >>> [InverseSqrt(timescale=1)(t, lr0=1.0) for t in (0, 3, 15)]
        [1.0, 0.5, 0.25]
    """

    timescale: Length | None = None

    def __post_init__(self) -> None:
        if self.timescale is not None:
            check_length("timescale", self.timescale)

    def factor(self, t: int) -> float:
        timescale = 10_000 if self.timescale is None else self.timescale
        return 1.0 / math.sqrt((t + timescale) / timescale)


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Hold, then decay to ``min_lr`` (HuggingFace ``get_wsd_schedule`` after its warmup).

    Over ``T = total`` intervals: the factor is 1 for ``T - decay`` intervals, then follows ``cosine``
    ``(1 + cos(pi * p)) / 2``, ``linear`` ``1 - p`` or ``1-sqrt`` ``1 - sqrt(p)`` with ``p = (t - T + decay) / decay``,
    and is 0 from ``T`` on: ``lr(t) = min_lr + (lr0 - min_lr) * factor(t)``. ``Warmup(WarmupStableDecay(decay=D),
    W)`` over ``N`` intervals equals ``get_wsd_schedule(W, D, N)``; HuggingFace's ``min_lr_ratio`` is
    ``min_lr / lr0`` (and its warmup starts there: ``warmup_start_factor = min_lr_ratio``).

    Args:
        decay: Intervals of the decay phase, an int >= 1 or a fraction of the run; at most ``total``.
        decay_type: ``cosine``, ``linear`` or ``1-sqrt``.
        min_lr: The absolute LR at the end, >= 0.
        total: ``T``, the intervals of hold plus decay; ``None`` means the rest of the run.

    Example:
        >>> [WarmupStableDecay(decay=2, decay_type="linear", total=5)(t, lr0=1.0) for t in range(6)]
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """

    decay: Length = Dur(0.2)
    decay_type: Literal["cosine", "linear", "1-sqrt"] = "cosine"
    min_lr: float = 0.0
    total: Length | None = None

    def __post_init__(self) -> None:
        _parse_dur_strings(self, "decay")
        check_length("decay", self.decay)
        check_choice("decay_type", self.decay_type, ("cosine", "linear", "1-sqrt"))
        check_float("min_lr", self.min_lr, low=0.0)
        _check_total(self)
        if isinstance(self.total, int) and isinstance(self.decay, int) and self.decay > self.total:
            raise ConfigValueError("decay", self.decay, f"at most `total` ({self.total} intervals)")

    def bind(self, run: int | None, horizon: int | None = None) -> Schedule:
        return _bind_total(self, run, horizon)

    def factor(self, t: int) -> float:
        total = _total(self)
        stable = total - self.decay  # type: ignore[operator]
        if t < stable:
            return 1.0
        if t >= total:
            return 0.0
        progress = float(t - stable) / float(self.decay)  # type: ignore[arg-type]
        if self.decay_type == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.decay_type == "linear":
            return 1.0 - progress
        return 1.0 - math.sqrt(progress)


@dataclass(frozen=True)
class Piecewise(Schedule):
    """Piecewise-constant factors (Keras ``PiecewiseConstantDecay``, with values as shares of ``lr0``).

    ``lr(t) = lr0 * values[i]`` where ``i`` is the number of boundaries strictly below ``t``: ``values[0]`` for
    ``t <= boundaries[0]``, ``values[i]`` for ``boundaries[i - 1] < t <= boundaries[i]``, ``values[-1]`` after.

    Args:
        boundaries: Strictly increasing times, ints >= 1 or fractions of the run.
        values: Factors > 0, one more than ``boundaries``.

    Example:
        >>> [Piecewise(boundaries=(2, 4), values=(1.0, 0.5, 0.25))(t, lr0=1.0) for t in range(6)]
        [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    """

    boundaries: tuple[Length, ...] = (Dur(0.5), Dur(0.75))
    values: tuple[float, ...] = (1.0, 0.1, 0.01)

    def __post_init__(self) -> None:
        _parse_dur_strings(self, "boundaries")
        object.__setattr__(self, "values", tuple(self.values))
        if not self.boundaries:
            raise ConfigValueError("boundaries", [], "a non-empty list of strictly increasing times")
        for i, b in enumerate(self.boundaries):
            check_length(f"boundaries[{i}]", b)
        ints = [b for b in self.boundaries if isinstance(b, int)]
        if len(ints) == len(self.boundaries) and any(b <= a for a, b in zip(ints, ints[1:])):
            raise ConfigValueError("boundaries", list(self.boundaries), "strictly increasing")
        if len(self.values) != len(self.boundaries) + 1:
            raise ConfigValueError(
                "values", list(self.values), f"{len(self.boundaries) + 1} factors, one more than the boundaries"
            )
        for i, v in enumerate(self.values):
            check_float(f"values[{i}]", v, low=0.0, low_open=True)

    def factor(self, t: int) -> float:
        return self.values[bisect.bisect_left(self.boundaries, t)]  # type: ignore[arg-type]
