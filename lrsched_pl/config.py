"""Hydra schemas for the `schedule` group, range checks, and the bridge from a config node to the callback.

Each `conf/schedule/<option>.yaml` starts from the schema registered here as ``schema/schedule/<option>``, so Hydra
itself refuses wrong types, unknown keys and unknown enum values when the config is composed. The schemas are
generated from the schedule classes' own dataclass fields, so a key, its type and its default live in one place.
:func:`validate` then checks what a schema cannot (ranges, force-added ``+schedule.key`` overrides, ``min_lr`` against
the optimizer's LR) without importing torch, so a bad config is refused in well under a second.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import shutil
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Literal, Optional, Union

from omegaconf import MISSING, DictConfig, OmegaConf

from lrsched_pl.compose import Sequence, Warmup
from lrsched_pl.errors import ConfigValueError, UnknownKeyError, check_choice, check_float
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

Interval = enum.Enum("Interval", ["step", "epoch"])


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
    # a constant schedule under a plateau: its keys are the plateau's
    "plateau": Option(ReducePlateau, "epoch"),
}

# Keys every `schedule=` option has besides its class's own: the warmup wraps whatever the option builds.
_COMMON_KEYS = ("name", "interval", "warmup", "warmup_start_factor")


def _mentions_dur(hint: Any) -> bool:
    return hint is Dur or any(_mentions_dur(a) for a in typing.get_args(hint))


def _schema_type(hint: Any, key: str) -> Any:
    """Maps a schedule field's annotation to one OmegaConf can type-check.

    Lengths (``int | Dur``) become ``Any``: OmegaConf has no unions, and :func:`build_schedule` checks them; so do
    nested schedules (``sequence``).
    """
    origin = typing.get_origin(hint)
    if origin is tuple:
        return List[_schema_type(typing.get_args(hint)[0], key)]
    if _mentions_dur(hint) or (isinstance(hint, type) and issubclass(hint, Schedule)):
        return Any
    if origin is Literal:
        return enum.Enum(key, [str(v) for v in typing.get_args(hint)])
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return Optional[_schema_type(inner, key)]
    return hint


def _yaml_value(value: Any) -> Any:
    """A class default as the config writes it: ``Dur(0.25)`` -> ``"0.25dur"``."""
    return str(value) if isinstance(value, Dur) else value


def _class_fields(cls: type) -> list[tuple[str, Any, Any]]:
    """``(name, schema type, dataclass default)`` of the init fields of a schedule or plateau class."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if isinstance(f.default, tuple):
            default = dataclasses.field(default_factory=lambda d=f.default: [_yaml_value(v) for v in d])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            default = dataclasses.field(default=MISSING)  # "???": required
        else:
            default = dataclasses.field(default=_yaml_value(f.default))
        out.append((f.name, _schema_type(hints[f.name], f.name), default))
    return out


def schema_for(option: str) -> type:
    """The structured-config dataclass of ``schedule=<option>``: the common keys, then the class's fields."""
    spec = OPTIONS[option]
    common: list[tuple[str, Any, Any]] = [
        ("name", str, dataclasses.field(default=option)),
        ("interval", Interval, dataclasses.field(default=Interval[spec.interval])),
        ("warmup", Any, dataclasses.field(default=0)),
        ("warmup_start_factor", float, dataclasses.field(default=0.0)),
    ]
    return dataclasses.make_dataclass(f"{spec.cls.__name__}Conf", common + _class_fields(spec.cls))


def register_configs() -> None:
    """Stores the schemas in Hydra's ConfigStore: ``schema/schedule/<option>`` and ``schema/plateau``."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for option in OPTIONS:
        cs.store(group="schema/schedule", name=option, node=schema_for(option))
    cs.store(group="schema", name="plateau", node=dataclasses.make_dataclass("PlateauConf", _class_fields(ReducePlateau)))


def _plain(node: DictConfig | dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)  # type: ignore[return-value]
    return {k: (v.name if isinstance(v, enum.Enum) else v) for k, v in node.items()}


def _parse_lengths(key: str, value: Any, hint: Any) -> Any:
    """Turns ``"0.25dur"`` strings of length keys into :class:`Dur`; lists become tuples."""
    if isinstance(value, list):
        return tuple(_parse_lengths(f"{key}[{i}]", v, hint) for i, v in enumerate(value))
    return Dur.parse(key, value) if _mentions_dur(hint) else value


def _check_keys(where: str, values: dict[str, Any], allowed: list[str]) -> None:
    for key in values:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise UnknownKeyError(f"{where}.{key}", values[key], f"{', '.join(allowed)}{hint}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls(**values)`` after the unknown-key check and length parsing; errors name ``where.<key>``."""
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    _check_keys(where, values, allowed)
    hints = typing.get_type_hints(cls)
    try:
        kwargs = {k: _parse_lengths(k, v, hints[k]) for k, v in values.items()}
        return cls(**kwargs)
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
        raise ConfigValueError(f"{where}.interval", values["interval"], f"absent or `{interval}`, the sequence's interval")
    plateau = None
    if spec.cls is Sequence:
        children = own.pop("schedules", [])
        if not isinstance(children, list):
            raise ConfigValueError(f"{where}.schedules", children, "a list of schedule nodes, each with a `name`")
        own["schedules"] = tuple(
            _build_option(c if isinstance(c, dict) else {"name": c}, f"{where}.schedules[{i}]", interval)[0]
            for i, c in enumerate(children)
        )
        schedule = _build(Sequence, own, where)
    elif spec.cls is ReducePlateau:
        schedule, plateau = Constant(), _build(ReducePlateau, own, where)
    else:
        if name == "inverse_sqrt" and own.get("timescale") is None and values.get("warmup", 0) != 0:
            own["timescale"] = values["warmup"]  # HuggingFace: timescale defaults to the warmup length
        schedule = _build(spec.cls, own, where)
    warmup = values.get("warmup", 0)
    start = values.get("warmup_start_factor", 0.0)
    if warmup != 0:
        try:
            schedule = Warmup(schedule, Dur.parse("warmup", warmup), start)
        except ConfigValueError as err:
            raise err.under(where) from None
    else:
        try:
            check_float("warmup_start_factor", start, low=0.0, high=1.0)
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


def schedule_callback(schedule: Node, plateau: Node | None = None) -> Any:
    """Hydra target of ``callbacks.lr_schedule``: a :class:`~lrsched_pl.callback.ScheduleCallback` from nodes."""
    from lrsched_pl.callback import ScheduleCallback

    sched, interval, plateau_ = build_parts(schedule, plateau)
    return ScheduleCallback(sched, interval=interval, plateau=plateau_)


OBJECTIVE_DIRECTIONS = ("minimize", "maximize")  # objective_direction: which value of `objective` is best


def validate(cfg: DictConfig) -> None:
    """Checks the whole run config before anything heavy is imported.

    Raises:
        ConfigValueError: Naming the first offending key and what it allows.
    """
    check_choice("objective_direction", cfg.get("objective_direction", "minimize"), OBJECTIVE_DIRECTIONS)
    sched, _, plateau = build_parts(cfg.schedule, cfg.get("plateau"))
    lr = cfg.optimizer.get("lr")
    check_float("optimizer.lr", lr, low=0.0, low_open=True)
    for where, part in (("schedule", sched), ("schedule" if cfg.get("plateau") is None else "plateau", plateau)):
        try:
            if part is not None:
                part.check_lr(lr)
        except ConfigValueError as err:
            raise err.under(where) from None


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
    target = str(cfg.optimizer.get("_target_", "?"))
    return {
        "schedule": values["name"],
        "schedule_params": params,
        "optimizer": target.rsplit(".", 1)[-1],
        "lr": float(cfg.optimizer.lr),
        "seed": int(cfg.seed) if cfg.get("seed") is not None else -1,
    }
