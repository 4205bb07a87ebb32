"""The up-front checks of everything in a run config besides the schedule: before torch or Lightning is imported.

:func:`check_run` walks the config's nodes: the trainer, the model, the data, the optimizer, the logger and every
callback, each against its ``_target_``'s argument table (:mod:`lrsched_pl.argspecs`) or, for a class of the user's
own, against its ``__init__`` as written in its source (:mod:`lrsched_pl.signatures`); then the top-level keys
(``seed``, ``ckpt_path``, ``objective``) and the combinations a config alone decides (a momentum-cycling schedule on
an optimizer without momentum, an LR monitor that would never log, a schedule selected with no callback to run it).
Every refusal is a :class:`~lrsched_pl.errors.ConfigValueError` naming the full key.
"""

from __future__ import annotations

import difflib
from typing import Any

from lrsched_pl.argspecs import KNOWN, WITH_MOMENTUM
from lrsched_pl.errors import ConfigValueError, UnknownKeyError
from lrsched_pl.rules import BOOL, NAME, Rule, choice, integer, optional
from lrsched_pl.signatures import init_params
from lrsched_pl.values import cycles_momentum

SCHEDULE_TARGET = "lrsched_pl.config.schedule_callback"
# Another spelling of a class the tables know.
ALIASES = {
    "lightning.Trainer": "lightning.pytorch.Trainer",
    "pytorch_lightning.Trainer": "lightning.pytorch.Trainer",
    "lightning.pytorch.trainer.Trainer": "lightning.pytorch.Trainer",
    "lightning.pytorch.callbacks.lr_monitor.LearningRateMonitor": "lightning.pytorch.callbacks.LearningRateMonitor",
    "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint": "lightning.pytorch.callbacks.ModelCheckpoint",
    "lightning.pytorch.loggers.tensorboard.TensorBoardLogger": "lightning.pytorch.loggers.TensorBoardLogger",
}
_TYPES: dict[str, Rule] = {
    "int": integer(),
    "float": Rule(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "bool": Rule(lambda v: isinstance(v, bool), "true or false"),
    "str": Rule(lambda v: isinstance(v, str), "a string"),
}


def _target(where: str, node: dict[str, Any]) -> str:
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigValueError(f"{where}._target_", target, "the import path of a class, e.g. my_pkg.model.MyModel")
    return ALIASES.get(target, target)


def _unknown(where: str, key: str, value: Any, allowed: list[str]) -> UnknownKeyError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return UnknownKeyError(f"{where}.{key}", value, f"{', '.join(allowed)}{hint}")


def check_node(where: str, node: dict[str, Any], supplied: tuple[str, ...] = ()) -> str:
    """Checks a ``_target_`` node's keys and values; returns its (normalized) target.

    Args:
        where: The node's key in the config (``trainer``, ``callbacks.model_checkpoint``).
        node: The node as plain Python values.
        supplied: Arguments the run passes itself (the model's ``optimizer``, an optimizer's ``params``).
    """
    target = _target(where, node)
    args = {k: v for k, v in node.items() if not k.startswith("_")}
    spec = KNOWN.get(target)
    if spec is not None:
        for key, value in args.items():
            if key not in spec:
                raise _unknown(where, key, value, list(spec))
            spec[key](f"{where}.{key}", value)
        return target
    params = init_params(target)
    if params is None:  # not readable from source: Hydra's instantiate will say what is wrong
        return target
    if not params.any_keyword:
        for key, value in args.items():
            if key not in params.names:
                raise _unknown(where, key, value, [n for n in params.names if n not in supplied])
    missing = [n for n in params.required if n not in args and n not in supplied]
    if missing:
        raise ConfigValueError(f"{where}.{missing[0]}", "missing", f"set: `{target}` requires it (`+{where}.{missing[0]}=...`)")
    for key, value in args.items():
        kind = params.annotations.get(key)
        if kind is not None and value is not None:
            _TYPES[kind](f"{where}.{key}", value)
    return target


def check_run(cfg: dict[str, Any], schedule: Any, plateau: Any, values: dict[str, Any] | None = None) -> None:
    """Checks every node and top-level key of a run config (plain values) besides ``schedule`` and ``plateau``,
    which :func:`lrsched_pl.config.build_parts` built into ``schedule`` and ``plateau`` already.

    Raises:
        ConfigValueError: Naming the first offending key, its value and what it allows.
    """
    optional(integer(0, 2**32 - 1))("seed", cfg.get("seed"))
    NAME("objective", cfg.get("objective"))
    choice("minimize", "maximize")("objective_direction", cfg.get("objective_direction", "minimize"))
    BOOL("lr_find", cfg.get("lr_find", False))
    BOOL("rebind", cfg.get("rebind", False))
    _check_ckpt_path(cfg.get("ckpt_path"))
    trainer = cfg.get("trainer")
    if not isinstance(trainer, dict):
        raise ConfigValueError("trainer", trainer, "a node with a `_target_` (trainer=default)")
    check_node("trainer", trainer, supplied=("logger", "callbacks"))
    _check_lengths(trainer)
    model = check_node("model", cfg.get("model") or {}, supplied=("optimizer", "param_groups"))
    if cfg.get("param_groups"):  # param_groups=none is an empty node
        check_node("param_groups", cfg["param_groups"])
        _check_takes_param_groups(model)
    check_node("data", cfg.get("data") or {})
    optimizer = check_node("optimizer", cfg.get("optimizer") or {}, supplied=("params",))
    if cfg.get("logger"):
        check_node("logger", cfg["logger"])
    callbacks = {k: v for k, v in (cfg.get("callbacks") or {}).items() if v is not None}
    for name, node in callbacks.items():
        if isinstance(node, dict) and node.get("_target_") == SCHEDULE_TARGET:
            continue
        target = check_node(f"callbacks.{name}", node)
        _check_callback(f"callbacks.{name}", target, node, trainer, cfg)
    if cycles_momentum(schedule) and optimizer.startswith("torch.optim.") and optimizer not in WITH_MOMENTUM:
        raise ConfigValueError(
            "schedule.cycle_momentum", True,
            f"false with `{optimizer}`, which has no momentum to cycle (or use optimizer=sgd, adam, adamw, rmsprop)",
        )  # fmt: skip
    _check_values(values or {}, schedule, optimizer, cfg)
    _check_schedule_runs(cfg, callbacks, plateau)


def _check_values(values: dict[str, Any], schedule: Any, optimizer: str, cfg: dict[str, Any]) -> None:
    """The other scheduled values against the optimizer, the LR schedule and the param groups."""
    for where, value in values.items():
        if value.key == "momentum" and optimizer.startswith("torch.optim.") and optimizer not in WITH_MOMENTUM:
            raise ConfigValueError(
                where, value.schedule.__class__.__name__,
                f"unset with `{optimizer}`, which has no momentum (or use optimizer=sgd, adam, adamw, rmsprop)",
            )  # fmt: skip
        if value.key == "momentum" and value.groups is None and cycles_momentum(schedule):
            raise ConfigValueError(
                where, "set", "unset while the schedule cycles the momentum, or set schedule.cycle_momentum=false"
            )
        if value.groups is not None and not cfg.get("param_groups") and not _names_groups(cfg):
            raise ConfigValueError(
                where, "set",
                f"a param group's schedule needs named groups: param_groups=no_decay, layer_decay or modules (or a "
                f"model whose configure_optimizers names its groups); the default param_groups=none has one unnamed group",
            )  # fmt: skip


# Our models, which name param groups only through a `param_groups` builder.
MODELS_WITHOUT_NAMED_GROUPS = {
    "lrsched_pl.models.Classifier", "lrsched_pl.models_1d.CNN1D", "lrsched_pl.models_1d.MLP1D", "lrsched_pl.lm.CausalLM"
}


def _names_groups(cfg: dict[str, Any]) -> bool:
    """Whether the model may name its own param groups: anything but our Classifier without a builder."""
    return (cfg.get("model") or {}).get("_target_") not in MODELS_WITHOUT_NAMED_GROUPS


def _check_takes_param_groups(model: str) -> None:
    """A param-group builder is handed to the model as its ``param_groups`` argument: the model must take one."""
    params = init_params(model) if model not in KNOWN else None
    if params is not None and not params.any_keyword and "param_groups" not in params.names:
        raise ConfigValueError(
            "param_groups", "set",
            f"none with `{model}`, whose __init__ takes no `param_groups` (add `param_groups=None` and build the "
            "optimizer with lrsched_pl.param_groups.make_optimizer(optimizer, self, param_groups))",
        )  # fmt: skip


def _check_ckpt_path(path: Any) -> None:
    """A resume's checkpoint: a path, to an intact Lightning checkpoint file (:func:`lrsched_pl.checkpoint.check_file`:
    no torch, no loading)."""
    if path is None:
        return
    if not isinstance(path, str) or not path:
        raise ConfigValueError("ckpt_path", path, "the path of a checkpoint file, or null")
    from lrsched_pl.checkpoint import check_file

    check_file(path)


def _check_lengths(trainer: dict[str, Any]) -> None:
    """The bounds a run's length needs: a minimum not above the maximum."""
    pairs = (("min_epochs", "max_epochs"), ("min_steps", "max_steps"))
    for low, high in pairs:
        lo, hi = trainer.get(low), trainer.get(high)
        if lo is not None and hi is not None and hi != -1 and lo > hi:
            raise ConfigValueError(f"trainer.{low}", lo, f"at most `trainer.{high}` ({hi})")


def _check_callback(where: str, target: str, node: dict[str, Any], trainer: dict[str, Any], cfg: dict[str, Any]) -> None:
    """Combinations Lightning refuses (or silently ignores) once it runs, decided here from the config."""
    if target == "lightning.pytorch.callbacks.LearningRateMonitor":
        if trainer.get("log_every_n_steps") == 0:
            raise ConfigValueError(
                "trainer.log_every_n_steps", 0,
                f">= 1 with the LR monitor (`{where}`), which logs only every log_every_n_steps steps: 0 logs no LR "
                f"at all (use 1 for every step, or remove the monitor with ~{where})",
            )  # fmt: skip
        if not cfg.get("logger"):
            raise ConfigValueError("logger", None, f"set while `{where}` is in the run (it logs to the logger): "
                                   f"keep logger=tensorboard, or remove the monitor with ~{where}")  # fmt: skip
    if target == "lightning.pytorch.callbacks.ModelCheckpoint":
        every = [k for k in ("every_n_train_steps", "every_n_epochs", "train_time_interval") if node.get(k)]
        if len(every) > 1:
            raise ConfigValueError(
                f"{where}.{every[1]}", node[every[1]], f"null while `{where}.{every[0]}` is set (Lightning takes one)"
            )
        if node.get("monitor") is None and node.get("save_top_k", 1) not in (-1, 0, 1):
            raise ConfigValueError(
                f"{where}.save_top_k", node["save_top_k"], f"0, 1 or -1 without a `{where}.monitor` to rank by"
            )


def _check_schedule_runs(cfg: dict[str, Any], callbacks: dict[str, Any], plateau: Any) -> None:
    """A schedule chosen in the config with no ScheduleCallback in the run would be silently ignored (and still
    named in TensorBoard's HPARAMS): refuse it."""
    runs = any(isinstance(n, dict) and n.get("_target_") == SCHEDULE_TARGET for n in callbacks.values())
    schedule = cfg.get("schedule") or {}
    chosen = schedule.get("name", "constant") != "constant" or schedule.get("warmup", 0) != 0 or plateau is not None
    if not runs and chosen:
        raise ConfigValueError(
            "callbacks.lr_schedule", "removed",
            f"in the run while `schedule={schedule.get('name')}`{' with a plateau' if plateau else ''} is selected: "
            "nothing else would apply it (keep callbacks.lr_schedule, or use schedule=constant)",
        )  # fmt: skip
