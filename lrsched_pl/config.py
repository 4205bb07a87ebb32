"""The `schedule` and `plateau` groups: from a config node to the schedule, its interval and the callback.

Each `conf/schedule/<option>.yaml` lists every key of its option (`name`, `interval`, `warmup`,
`warmup_start_factor`, then the schedule class's own fields, with the class's defaults). No Hydra schema is
registered: a Hydra app that only has our files in its search path (``hydra_plugins/lrsched_pl_searchpath``) gets
the same checks, and :func:`build_schedule` checks what a schema would (unknown keys, types, enum values) plus what it
cannot (ranges, lengths, ``min_lr`` against the optimizer's LR), naming the full key (``schedule.gamma``), without
importing torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from omegaconf import DictConfig, OmegaConf

from lrsched_pl.compose import Product, Sequence, Warmup, check_warmup_shape
from lrsched_pl.errors import ConfigValueError, UnknownKeyError, check_float
from lrsched_pl.plateau import ReducePlateau
from lrsched_pl.values import LR, MOMENTUM, WEIGHT_DECAY, ScheduledValue, cycles_momentum
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


@dataclass(frozen=True)
class Option:
    """A `schedule=<option>`: the class its keys build, and its default interval."""

    cls: type
    interval: Literal["step", "epoch"]


OPTIONS: dict[str, Option] = {
    "constant": Option(Constant, "epoch"),
    "step": Option(StepDecay, "epoch"),
    "multistep": Option(MultiStepDecay, "epoch"),
    "exponential": Option(ExponentialDecay, "epoch"),
    "time_based": Option(TimeBasedDecay, "step"),
    "cosine": Option(CosineDecay, "step"),
    "linear": Option(LinearDecay, "step"),
    "polynomial": Option(PolynomialDecay, "step"),
    "cosine_restarts": Option(CosineRestarts, "step"),
    "onecycle": Option(OneCycle, "step"),
    "cyclic": Option(Cyclic, "step"),
    "inverse_sqrt": Option(InverseSqrt, "step"),
    "wsd": Option(WarmupStableDecay, "step"),
    "piecewise": Option(Piecewise, "step"),
    "sequence": Option(Sequence, "step"),
    "product": Option(Product, "step"),
    # a constant schedule under a plateau: its keys are the plateau's
    "plateau": Option(ReducePlateau, "epoch"),
}

# Keys every `schedule=` option has besides its class's own: the warmup wraps whatever the option builds.
_COMMON_KEYS = ("name", "interval", "warmup", "warmup_start_factor", "warmup_shape")


def natural_interval(schedule: Schedule | ReducePlateau) -> Literal["step", "epoch"]:
    """The interval ``schedule=<option>`` uses by default for a schedule of this class (a warmup: its inner one's).

    Sequences and classes of the user's own count optimizer steps.
    """
    if isinstance(schedule, Warmup):
        return natural_interval(schedule.inner)
    for option in OPTIONS.values():
        if type(schedule) is option.cls:
            return option.interval
    return "step"


def _plain(node: DictConfig | dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def _check_keys(where: str, values: dict[str, Any], allowed: list[str]) -> None:
    for key in values:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise UnknownKeyError(f"{where}.{key}", values[key], f"{', '.join(allowed)}{hint}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls(**values)`` after the unknown-key check; errors name ``where.<key>``."""
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    _check_keys(where, values, allowed)
    try:
        return cls(**values)
    except ConfigValueError as err:
        raise err.under(where) from None


def _build_option(values: dict[str, Any], where: str, interval: str | None) -> tuple[Schedule, str, ReducePlateau | None]:
    name = values.get("name")
    if name not in OPTIONS:
        raise ConfigValueError(f"{where}.name", name, f"one of {', '.join(OPTIONS)}")
    spec = OPTIONS[name]
    own = {k: v for k, v in values.items() if k not in _COMMON_KEYS}
    _check_keys(where, values, [*_COMMON_KEYS, *(f.name for f in dataclasses.fields(spec.cls) if f.init)])
    if interval is None:
        interval = values.get("interval", spec.interval)
        if interval not in ("step", "epoch"):
            raise ConfigValueError(f"{where}.interval", interval, "one of step, epoch")
    elif values.get("interval", interval) != interval:
        raise ConfigValueError(
            f"{where}.interval", values["interval"], f"absent or `{interval}`, the enclosing schedule's interval"
        )
    plateau = None
    if spec.cls in (Sequence, Product):
        children = own.pop("schedules", [])
        if not isinstance(children, list):
            raise ConfigValueError(f"{where}.schedules", children, "a list of schedule nodes, each with a `name`")
        built = [
            _build_option(c if isinstance(c, dict) else {"name": c}, f"{where}.schedules[{i}]", interval)
            for i, c in enumerate(children)
        ]
        for i, (_, _, child_plateau) in enumerate(built):
            if child_plateau is not None:  # a plateau decides on validations, not on a segment's local time
                raise ConfigValueError(
                    f"{where}.schedules[{i}].name", "plateau",
                    f"a schedule, not a plateau: a plateau cannot be one part of a {name}; put it on top of the "
                    f"whole {name} with `plateau=val_loss` (or val_acc)",
                )  # fmt: skip
        own["schedules"] = tuple(schedule for schedule, _, _ in built)
        schedule = _build(spec.cls, own, where)
    elif spec.cls is ReducePlateau:
        schedule, plateau = Constant(), _build(ReducePlateau, own, where)
    else:
        if name == "inverse_sqrt" and own.get("timescale") is None and values.get("warmup", 0) != 0:
            own["timescale"] = values["warmup"]  # HuggingFace: timescale defaults to the warmup length
        schedule = _build(spec.cls, own, where)
    warmup = values.get("warmup", 0)
    start = values.get("warmup_start_factor", 0.0)
    shape = values.get("warmup_shape", "linear")
    try:
        if warmup != 0:
            schedule = Warmup(schedule, Dur.parse("warmup", warmup), start, shape)
        else:
            check_warmup_shape(shape, start)
    except ConfigValueError as err:
        raise err.under(where) from None
    return schedule, interval, plateau


def build_schedule(node: DictConfig | dict[str, Any]) -> tuple[Schedule, str, ReducePlateau | None]:
    """Builds the pure parts of a `schedule` node: the schedule (warmup included), its interval, and the
    plateau of ``schedule=plateau``.

    Raises:
        ConfigValueError: On an unknown option, an unknown key or an out-of-range value; the key is given in
            full (``schedule.gamma``).
    """
    return _build_option(_plain(node), "schedule", None)


def build_plateau(node: DictConfig | dict[str, Any] | None) -> ReducePlateau | None:
    """The ``plateau`` group (a plateau on top of any schedule), or ``None`` when unset."""
    if node is None:
        return None
    return _build(ReducePlateau, _plain(node), "plateau")


Node = Union[DictConfig, dict[str, Any]]


def build_parts(schedule: Node, plateau: Node | None = None) -> tuple[Schedule, str, ReducePlateau | None]:
    """The schedule, its interval, and the plateau: ``schedule=plateau``'s own, or the ``plateau`` group's."""
    sched, interval, own = build_schedule(schedule)
    on_top = build_plateau(plateau)
    if own is not None and on_top is not None:
        raise ConfigValueError(
            "plateau", "set", "unset with `schedule=plateau`, which is one already: use `schedule=constant plateau=...`"
        )
    return sched, interval, own or on_top


# The config groups of the other scheduled values, and the param-group key each one writes.
VALUE_GROUPS = {"wd_schedule": WEIGHT_DECAY, "momentum_schedule": MOMENTUM}


def build_value(node: Node | str, where: str, key: str, groups: tuple[str, ...] | None = None) -> ScheduledValue:
    """A :class:`~lrsched_pl.values.ScheduledValue` from a schedule node plus ``start`` and ``groups``.

    Raises:
        ConfigValueError: Naming ``where.<key>`` (``wd_schedule.min_lr``).
    """
    if not isinstance(node, (str, dict, DictConfig)):
        shown = OmegaConf.to_container(node) if OmegaConf.is_config(node) else node
        raise ConfigValueError(where, shown, "a schedule node with a `name` (e.g. {name: cosine})")
    values = {"name": node} if isinstance(node, str) else _plain(node)
    start, own_groups = values.pop("start", None), values.pop("groups", None)
    if values.get("name") == "plateau":
        raise ConfigValueError(f"{where}.name", "plateau", "a schedule: the plateau reduces only the LR (plateau=...)")
    if groups is not None and own_groups is not None:
        raise ConfigValueError(f"{where}.groups", own_groups, f"unset: the group is the one it is under, {groups[0]}")
    schedule, interval, _ = _build_option(values, where, None)
    if cycles_momentum(schedule):
        raise ConfigValueError(
            f"{where}.cycle_momentum", True, "false: only `schedule=` cycles the momentum (or use momentum_schedule=)"
        )
    if key == MOMENTUM:
        check_float(f"{where}.min_lr", schedule.min_lr, low=0.0, high=1.0, high_open=True)
        if start is not None:
            check_float(f"{where}.start", start, low=0.0, high=1.0, high_open=True)
    elif start is not None:
        check_float(f"{where}.start", start, low=0.0, low_open=key == LR)
    try:
        return ScheduledValue(key, schedule, interval, groups if groups is not None else own_groups, start)
    except ConfigValueError as err:
        raise err.under(where) from None


def build_values(
    weight_decay: Node | None = None,
    momentum: Node | None = None,
    groups: Node | None = None,
    schedule: Node | None = None,
) -> tuple[list[ScheduledValue], list[str]]:
    """The scheduled values of ``wd_schedule``, ``momentum_schedule`` and ``group_schedules``, with their keys.

    ``group_schedules`` maps a param-group name to ``{key: schedule node}`` (``key`` ``lr``, ``weight_decay``,
    ``momentum`` or any numeric param-group key); a node may be an option name (``constant``). A node without a
    ``name`` changes keys of the schedule that key follows for every group (``schedule`` for ``lr``,
    ``wd_schedule``, ``momentum_schedule``): ``group_schedules.head.lr.warmup=0`` is the shared LR schedule
    without its warmup.
    """
    found: list[tuple[ScheduledValue, str]] = []
    for where, node in (("wd_schedule", weight_decay), ("momentum_schedule", momentum)):
        if node is not None:
            found.append((build_value(node, where, VALUE_GROUPS[where]), where))
    per_group = _plain(groups) if groups is not None else {}
    if not isinstance(per_group, dict):
        raise ConfigValueError("group_schedules", groups, "a map: param-group name -> {key: schedule node}")
    for group, keys in per_group.items():
        if not isinstance(keys, dict) or not keys:
            raise ConfigValueError(
                f"group_schedules.{group}", keys, "a map of param-group keys (lr, weight_decay, momentum...) to schedule nodes"
            )
        shared = {LR: schedule, WEIGHT_DECAY: weight_decay, MOMENTUM: momentum}
        for key, node in keys.items():
            where = f"group_schedules.{group}.{key}"
            base = shared.get(str(key))
            if isinstance(node, (dict, DictConfig)) and "name" not in node and base is not None:
                base = {k: v for k, v in _plain(base).items() if k not in ("start", "groups")}
                if base.get("name") != "plateau":
                    node = {**base, **_plain(node)}
            found.append((build_value(node, where, str(key), (str(group),)), where))
    return [v for v, _ in found], [w for _, w in found]


def schedule_callback(
    schedule: Node,
    plateau: Node | None = None,
    weight_decay: Node | None = None,
    momentum: Node | None = None,
    groups: Node | None = None,
    rebind: bool = False,
) -> Any:
    """Hydra target of ``callbacks.lr_schedule``: a :class:`~lrsched_pl.callback.ScheduleCallback` from nodes."""
    from lrsched_pl.callback import ScheduleCallback

    sched, interval, plateau_ = build_parts(schedule, plateau)
    plateau_key = "plateau" if plateau is not None else "schedule"
    values, names = build_values(weight_decay, momentum, groups, schedule)
    callback = ScheduleCallback(sched, interval=interval, plateau=plateau_, values=values, rebind=rebind)
    return callback.use_config_names("schedule", plateau_key, names)


def validate(cfg: DictConfig) -> None:
    """Checks the whole run config before anything heavy is imported: the schedule and plateau here, every other
    node and key in :func:`lrsched_pl.checks.check_run`.

    Raises:
        ConfigValueError: Naming the first offending key and what it allows.
    """
    from lrsched_pl.checks import check_run

    sched, _, plateau = build_parts(cfg.schedule, cfg.get("plateau"))
    plain = plain_config(cfg)
    lr = (plain.get("optimizer") or {}).get("lr")
    check_float("optimizer.lr", lr, low=0.0, low_open=True)
    for where, part in (("schedule", sched), ("schedule" if cfg.get("plateau") is None else "plateau", plateau)):
        try:
            if part is not None:
                part.check_lr(lr)
        except ConfigValueError as err:
            raise err.under(where) from None
    values, names = build_values(
        cfg.get("wd_schedule"), cfg.get("momentum_schedule"), cfg.get("group_schedules"), cfg.schedule
    )
    for value, where in zip(values, names):
        if value.key == LR:
            try:
                value.schedule.check_lr(value.start if value.start is not None else lr)
            except ConfigValueError as err:
                raise err.under(where) from None
    check_run(plain, sched, plateau, dict(zip(names, values)))


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The run config (without Hydra's own node) as plain Python values, interpolations resolved.

    Raises:
        ConfigValueError: Naming a key whose interpolation (``${...}``) cannot be resolved.
    """
    from omegaconf.errors import OmegaConfBaseException

    plain: dict[str, Any] = {}
    for key in cfg:
        if key == "hydra":
            continue
        try:
            value = cfg[key]
            plain[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        except OmegaConfBaseException as err:
            if "HydraConfig was not set" in str(err):  # composed outside a run (the preview): `${hydra:...}` stays
                node = cfg._get_node(key)
                plain[key] = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node._value()
                continue
            where = getattr(err, "full_key", None) or key
            raise ConfigValueError(str(where), "an interpolation", f"resolvable ({str(err).splitlines()[0]})") from None
    return plain


def discard_unstarted_run(run_dir: str | Path) -> None:
    """Removes a run directory that holds nothing but what Hydra writes before the job (``.hydra/``, ``*.log``).

    Called for a run refused before its first step; a directory holding anything else (another run's files, a
    ``hydra.run.dir`` pointing at a folder with content) is left untouched.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or any(p.name != ".hydra" and p.suffix != ".log" for p in run_dir.iterdir()):
        return
    shutil.rmtree(run_dir, ignore_errors=True)


def describe(cfg: DictConfig) -> dict[str, Any]:
    """The run's hyperparameters for TensorBoard's HPARAMS tab: the same keys for every schedule."""
    values = _plain(cfg.schedule)
    params = ", ".join(f"{k}={values[k]}" for k in sorted(values) if k != "name")
    plateau = cfg.get("plateau")
    if plateau is not None:
        params += " | plateau: " + ", ".join(f"{k}={v}" for k, v in sorted(_plain(plateau).items()))
    for group in VALUE_GROUPS:  # the other scheduled values, and the param groups they may target
        node = cfg.get(group)
        if node is not None:
            params += f" | {group}: " + ", ".join(f"{k}={v}" for k, v in sorted(_plain(node).items()))
    for group, keys in (_plain(cfg.get("group_schedules") or {})).items():
        params += f" | group_schedules.{group}: {keys}"
    builder = (cfg.get("param_groups") or {}).get("_target_")
    if builder:
        params += f" | param_groups: {str(builder).rsplit('.', 1)[-1]}"
    target = str(cfg.optimizer.get("_target_", "?"))
    return {
        "schedule": values["name"],
        "schedule_params": params,
        "optimizer": target.rsplit(".", 1)[-1],
        "lr": float(cfg.optimizer.lr),
        "seed": int(cfg.seed) if cfg.get("seed") is not None else -1,
    }
