"""Scheduled values: any numeric param-group hyperparameter on a pure schedule, for every group or named ones.

A scheduled value is ``(key, schedule, interval, groups, start)``. At time ``t`` (optimizer steps or completed
epochs, its ``interval``) it writes into each param group it targets::

    value(t) = schedule(t, v0) = scale(t) * v0 + shift(t)        # (scale, shift) = schedule.affine(t)

where ``v0`` is ``start`` when given, else the group's own value as configured (the optimizer's ``lr``,
``weight_decay``, ...). The LR of ``schedule=`` is one of them (``key="lr"``, every group); so are
``wd_schedule=`` (``key="weight_decay"``), ``momentum_schedule=`` (``key="momentum"``: SGD's ``momentum`` or Adam's
``betas[0]``, as torch's ``OneCycleLR`` writes it), the momentum that ``onecycle``/``cyclic`` cycle
(:class:`CycledMomentum`, absolute), and per-group overrides (``group_schedules.<group>.<key>``).

Which value writes a group's key: the one that names the group in its ``groups`` wins over one for every group
(``groups=None``); two for the same group and key are refused (:func:`assign`). A weight-decay schedule for every
group leaves the groups configured with ``weight_decay = 0`` alone (the ``no_decay`` group of biases and norms):
name them in ``groups`` to schedule them too.

:class:`Writer` writes one value into its groups after each step (the callback holds one per value). Pure Python:
no torch, no Lightning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lrsched_pl.errors import ConfigValueError, check_choice
from lrsched_pl.schedules import Schedule

LR, MOMENTUM, WEIGHT_DECAY = "lr", "momentum", "weight_decay"


@dataclass(frozen=True)
class ScheduledValue:
    """One param-group key on a schedule: ``value(t) = schedule(t, v0)``.

    Args:
        key: The param-group key: ``lr``, ``weight_decay``, ``momentum`` (SGD ``momentum`` or Adam-like
            ``betas[0]``), or any other numeric key of the optimizer's groups (``dampening``, ``eps``...).
        schedule: A :class:`~lrsched_pl.schedules.Schedule` (unbound: fractions resolve against the run).
        interval: ``"step"`` or ``"epoch"``: the unit of ``t`` and when the value changes.
        groups: The names of the param groups it writes (their ``"name"`` key); ``None``: every group.
        start: ``v0`` for every group it writes; ``None``: each group's own configured value.
    """

    key: str
    schedule: Schedule
    interval: Literal["step", "epoch"] = "step"
    groups: tuple[str, ...] | None = None
    start: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key or self.key == "params":
            raise ConfigValueError("key", self.key, "a numeric param-group key: lr, weight_decay, momentum, ...")
        if not isinstance(self.schedule, Schedule):
            raise ConfigValueError("schedule", self.schedule, "a Schedule instance, e.g. CosineDecay()")
        check_choice("interval", self.interval, ("step", "epoch"))
        if self.groups is not None:
            if isinstance(self.groups, str) or not all(isinstance(g, str) and g for g in self.groups):
                raise ConfigValueError("groups", self.groups, "a list of param-group names, or null for every group")
            object.__setattr__(self, "groups", tuple(self.groups))
        if self.start is not None and (isinstance(self.start, bool) or not isinstance(self.start, (int, float))):
            raise ConfigValueError("start", self.start, "a number, or null for each group's configured value")

    @property
    def label(self) -> str:
        """How messages and TensorBoard name it: ``weight_decay``, ``lr[head]``."""
        return self.key if self.groups is None else f"{self.key}[{','.join(self.groups)}]"


@dataclass(frozen=True)
class CycledMomentum(Schedule):
    """The momentum a schedule cycles (``onecycle``, ``cyclic`` with ``cycle_momentum``), as an absolute value.

    ``value(t) = inner.momentum(t)``; where ``inner`` sets none (a warmup before it, a segment of a sequence that
    does not cycle) the group's configured momentum ``v0``.
    """

    inner: Schedule = None  # type: ignore[assignment]

    def affine(self, t: int) -> tuple[float, float]:
        m = self.inner.momentum(t)
        return (1.0, 0.0) if m is None else (0.0, m)

    def bind(self, run: int | None, horizon: int | None = None) -> CycledMomentum:
        bound = self.inner.bind(run, horizon)
        return self if bound is self.inner else CycledMomentum(bound)

    def check_lr(self, lr0: float) -> None:
        return None


def cycles_momentum(schedule: Any) -> bool:
    """Whether a schedule (a warmup's inner one, any segment of a sequence or factor of a product) cycles the
    momentum: then its :class:`CycledMomentum` is a scheduled value too."""
    if getattr(schedule, "cycle_momentum", False):
        return True
    inner = [getattr(schedule, "inner", None), *getattr(schedule, "schedules", ())]
    return any(cycles_momentum(s) for s in inner if s is not None)


# ---- reading and writing a key of a param group ------------------------------------------------------------------


def has_key(group: dict[str, Any], key: str) -> bool:
    if key == MOMENTUM:
        return "betas" in group or MOMENTUM in group
    return isinstance(group.get(key), (int, float)) and not isinstance(group.get(key), bool)


def read(group: dict[str, Any], key: str) -> float:
    if key == MOMENTUM and "betas" in group:
        return float(group["betas"][0])
    return float(group[key])


# ---- which value writes which group ------------------------------------------------------------------------------


@dataclass
class Target:
    """A param group a scheduled value writes: the group, its position ``(optimizer, group)``, its ``v0``."""

    group: dict[str, Any]
    where: tuple[int, int]
    v0: float


def group_name(group: dict[str, Any], where: tuple[int, int]) -> str:
    """A group's ``name``, or ``pg<n>`` counted from 1 as ``LearningRateMonitor`` tags unnamed groups."""
    return str(group.get("name", f"pg{where[1] + 1}"))


def assign(
    values: Sequence[ScheduledValue], optimizers: Sequence[Any], names: Sequence[str] | None = None
) -> list[list[tuple[dict[str, Any], tuple[int, int]]]]:
    """For each value, the param groups it writes (group dict, ``(optimizer index, group index)``).

    Args:
        values: The scheduled values, the LR's first.
        optimizers: The Trainer's optimizers.
        names: How messages name each value (config keys); defaults to ``ScheduledValue.label``.

    Raises:
        ConfigValueError: A group name no optimizer has; a group without the key; two values for one group and key.
    """
    names = list(names) if names is not None else [v.label for v in values]
    groups = [(g, (i, j)) for i, opt in enumerate(optimizers) for j, g in enumerate(opt.param_groups)]
    known = sorted({group_name(g, w) for g, w in groups})
    for value, name in zip(values, names):
        for wanted in value.groups or ():
            if wanted not in known:
                raise ConfigValueError(
                    _groups_key(name), wanted,
                    f"one of the optimizer's param groups {known} (groups are named by the model's "
                    "`configure_optimizers` or the `param_groups` builder)",
                )  # fmt: skip
    out: list[list[tuple[dict[str, Any], tuple[int, int]]]] = [[] for _ in values]
    skipped: set[int] = set()  # weight-decay values that passed over a group without weight decay
    for group, where in groups:
        name = group_name(group, where)
        for key in dict.fromkeys(v.key for v in values):
            mine = [k for k, v in enumerate(values) if v.key == key and v.groups is not None and name in v.groups]
            if not mine:
                mine = [k for k, v in enumerate(values) if v.key == key and v.groups is None]
                if key == WEIGHT_DECAY and mine and has_key(group, key) and read(group, key) == 0.0:
                    skipped.update(mine)
                    continue  # a no-decay group stays without weight decay unless named
            if len(mine) > 1:
                raise ConfigValueError(
                    names[mine[1]], "set",
                    f"unset, or other groups than {names[mine[0]]}: both would write `{key}` of param group "
                    f"`{name}`",
                )  # fmt: skip
            if mine:
                if not has_key(group, key):
                    raise ConfigValueError(
                        names[mine[0]], "set",
                        f"unset for {type(optimizers[where[0]]).__name__}, whose param group `{name}` has no `{key}`"
                        + (" (neither `momentum` nor `betas`)" if key == MOMENTUM else ""),
                    )  # fmt: skip
                out[mine[0]].append((group, where))
    for k, (value, name, found) in enumerate(zip(values, names, out)):
        if not found and k in skipped:  # a weight decay for every group, and every group had none
            raise ConfigValueError(
                name, "set",
                f"unset, or with param groups to write: every group has `{value.key}` 0 (set optimizer.{value.key} "
                f"> 0, or name the groups in {name}.groups)",
            )  # fmt: skip
    return out


def _groups_key(name: str) -> str:
    """The key that named the groups: ``wd_schedule.groups``, ``group_schedules.head`` (its own name), or the
    Python value's description."""
    if name.startswith("group_schedules."):
        return name.rsplit(".", 1)[0]
    return name if "[" in name else f"{name}.groups"


def targets(
    value: ScheduledValue, groups: Iterable[tuple[dict[str, Any], tuple[int, int]]], base: dict[tuple[int, int], float]
) -> list[Target]:
    """The value's targets with their ``v0``: ``start``, else ``base`` (restored), else the group's own value."""
    out = []
    for group, where in groups:
        v0 = value.start if value.start is not None else base.get(where, read(group, value.key))
        out.append(Target(group, where, float(v0)))
    return out


# ---- writing ---------------------------------------------------------------------------------------------------


class Writer:
    """One scheduled value, bound, with the param groups it writes: ``v = scale(t) * v0 + shift(t)``.

    LR writers fold the plateau in: ``max((scale * v0 + shift) * p, min_lr)``. :meth:`write` is a function made
    for the case at hand (plain, with a plateau, with Adam's ``betas``): it runs after every optimizer step.
    """

    def __init__(self, value: ScheduledValue, bound: Schedule, targets: list[Any], plateau: Any) -> None:
        self.key, self.interval, self.bound, self.targets = value.key, value.interval, bound, targets
        self.plateau = plateau if value.key == LR else None
        self.write = _write_function(self.key, bound, targets, self.plateau)

    def __getstate__(self) -> dict[str, Any]:  # the write function is a closure: made again on unpickling
        return {k: v for k, v in self.__dict__.items() if k != "write"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.write = _write_function(self.key, self.bound, self.targets, self.plateau)

    def unreduced(self, t: int) -> list[float]:
        scale, shift = self.bound.affine(t)
        return [scale * tg.v0 + shift for tg in self.targets]


def _write_function(key: str, bound: Schedule, targets: list[Any], plateau: Any) -> Any:
    """``write(t)`` for one scheduled value; locals bound as defaults, the fastest lookups Python has."""
    pairs = [(tg.group, tg.v0) for tg in targets]
    if plateau is not None:

        def write(t: int, affine: Any = bound.affine, pairs: Any = pairs, key: str = key, plateau: Any = plateau) -> None:
            scale, shift = affine(t)
            p, floor = plateau.scale, plateau.min_lr
            scale, shift = scale * p, shift * p
            for group, v0 in pairs:
                v = scale * v0 + shift
                group[key] = v if v > floor else floor

    elif key == MOMENTUM and any("betas" in group for group, _ in pairs):

        def write(t: int, affine: Any = bound.affine, pairs: Any = pairs) -> None:
            scale, shift = affine(t)
            for group, v0 in pairs:
                v = scale * v0 + shift
                if "betas" in group:
                    group["betas"] = (v, *group["betas"][1:])
                else:
                    group[MOMENTUM] = v

    else:

        def write(t: int, affine: Any = bound.affine, pairs: Any = pairs, key: str = key) -> None:
            scale, shift = affine(t)
            for group, v0 in pairs:
                group[key] = scale * v0 + shift

    return write
