"""Param-group builders: the `param_groups` config group, from a model to the optimizer's named param groups.

A builder is a callable ``model -> list of param-group dicts``; each group carries a ``name`` (so Lightning's
``LearningRateMonitor`` logs it as ``lr-<Optimizer>/<name>``) and may carry an ``lr_scale``, which
:func:`make_optimizer` multiplies into the group's LR once, when the optimizer is built. The schedule callback then
scales every group's own LR by the same factor, so the ratios between groups survive any schedule:
``lr_group(t) = schedule(t) · lr · lr_scale``.

- ``param_groups=none``: one group of every parameter, exactly ``optimizer(model.parameters())``.
- ``param_groups=no_decay``: :class:`NoDecay`, no weight decay on biases and normalization weights (AdamW practice).
- ``param_groups=layer_decay``: :class:`LayerDecay`, ``lr · decay^(depth − layer)`` per layer (timm
  ``param_groups_layer_decay``, BEiT/ELECTRA fine-tuning).
- ``param_groups=modules``: :class:`Modules`, named groups by module name (a ``head`` and a ``backbone``), each with
  its own LR scale; with ``group_schedules.<name>.<key>`` each gets its own schedule.

A model takes a builder as its ``param_groups`` argument and builds its optimizer with :func:`make_optimizer`, as
:class:`lrsched_pl.models.Classifier` does.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lrsched_pl.errors import ConfigValueError, check_float

ParamGroupBuilder = Callable[[nn.Module], list[dict[str, Any]]]
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.RMSNorm)


def make_optimizer(
    factory: Callable[[Iterable[Any]], torch.optim.Optimizer], model: nn.Module, builder: ParamGroupBuilder | None
) -> torch.optim.Optimizer:
    """``factory`` applied to ``builder(model)``'s groups (or to ``model.parameters()`` without a builder).

    Each group's ``lr_scale`` is multiplied into the LR the optimizer gave it, then removed, so the group's ``lr`` is
    its own ``lr0`` for the schedule (and no scheduler that reads ``lr_scale``, as timm's do, applies it twice).
    """
    if builder is None:
        return factory(model.parameters())
    optimizer = factory(builder(model))
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * group.pop("lr_scale", 1.0)
    return optimizer


def _matches(name: str, patterns: Sequence[str]) -> bool:
    """A pattern matches a parameter's name as a glob (``*.bias``) or as a module prefix (``net.0``)."""
    return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)


def _norm_params(model: nn.Module) -> set[str]:
    """The names of the parameters owned by normalization modules (BatchNorm, LayerNorm, GroupNorm, RMSNorm, ...)."""
    return {
        f"{module_name}.{name}" if module_name else name
        for module_name, module in model.named_modules()
        if isinstance(module, NORM_TYPES)
        for name, _ in module.named_parameters(recurse=False)
    }


def _exempt(model: nn.Module, patterns: Sequence[str]) -> Callable[[str, nn.Parameter], bool]:
    norms = _norm_params(model)
    return lambda name, p: p.ndim <= 1 or name in norms or _matches(name, patterns)


@dataclass(frozen=True)
class NoDecay:
    """Two groups: ``decay`` (the optimizer's ``weight_decay``) and ``no_decay`` (``weight_decay = 0``).

    A parameter goes to ``no_decay`` when it is 1-D (biases, normalization scales), belongs to a normalization module,
    or its name matches one of ``patterns`` (timm ``param_groups_weight_decay``). Frozen parameters are left out.

    Args:
        patterns: Extra names to exempt: globs (``*.pos_embed``) or module prefixes (``encoder.norm``).

    Example:
        >>> groups = NoDecay()(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))
        >>> [(g["name"], len(g["params"]), g.get("weight_decay")) for g in groups]
        [('decay', 1, None), ('no_decay', 3, 0.0)]
    """

    patterns: Sequence[str] = ("*.bias",)

    def __post_init__(self) -> None:
        _check_patterns("patterns", self.patterns)

    def __call__(self, model: nn.Module) -> list[dict[str, Any]]:
        exempt = _exempt(model, self.patterns)
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (no_decay if exempt(name, p) else decay).append(p)
        groups = [{"name": "decay", "params": decay}, {"name": "no_decay", "params": no_decay, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]


@dataclass(frozen=True)
class LayerDecay:
    """Layer-wise LR decay (timm ``param_groups_layer_decay``): layer ``i`` trains at ``lr · decay^(depth − i)``.

    Layers count from the input (0) to the head (``depth``, at the full LR). A parameter's layer is the index of the
    first of ``layers`` its name matches, ``len(layers)`` (the head) if none does; with ``layers=None`` it is the
    model's own ``layer_id(name)``, and ``depth`` is the largest layer id of any parameter. Frozen parameters join no
    group but still count for ``depth``, so freezing a block never shifts another layer's scale. With
    ``no_decay``, each layer is split like :class:`NoDecay` into ``layer_<i>_decay`` and ``layer_<i>_no_decay``
    (timm's names); otherwise its group is ``layer_<i>``.

    Args:
        decay: The factor per layer below the head, in (0, 1].
        layers: Module-name patterns (globs or prefixes), from the input up; ``None``: ``model.layer_id(name)``.
        no_decay: Also exempt biases and normalization weights from weight decay, per layer.
        patterns: Extra names exempt from weight decay (with ``no_decay``).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 1))
        >>> groups = LayerDecay(decay=0.5, layers=["0", "1"], no_decay=False)(model)
        >>> [(g["name"], g["lr_scale"]) for g in groups]
        [('layer_0', 0.25), ('layer_1', 0.5), ('layer_2', 1.0)]
    """

    decay: float = 0.75
    layers: Sequence[str] | None = None
    no_decay: bool = True
    patterns: Sequence[str] = ("*.bias",)

    def __post_init__(self) -> None:
        check_float("decay", self.decay, low=0.0, high=1.0, low_open=True)
        if self.layers is not None:
            _check_patterns("layers", self.layers, empty_ok=False)
        if not isinstance(self.no_decay, bool):
            raise ConfigValueError("no_decay", self.no_decay, "true or false")
        _check_patterns("patterns", self.patterns)

    def layer_ids(self, model: nn.Module) -> tuple[dict[str, int], int]:
        """Every parameter's layer (frozen ones included) and ``depth``, the head's layer."""
        names = [name for name, _ in model.named_parameters()]
        if self.layers is not None:
            layers = list(self.layers)
            ids = {n: next((i for i, p in enumerate(layers) if _matches(n, [p])), len(layers)) for n in names}
            return ids, len(layers)
        layer_id = getattr(model, "layer_id", None)
        if not callable(layer_id):
            raise ConfigValueError(
                "param_groups.layers", None,
                f"a list of module-name patterns from the input up, since `{type(model).__name__}` has no "
                "`layer_id(name)` method (e.g. param_groups.layers=[net.0,net.3])",
            )  # fmt: skip
        ids = {n: int(layer_id(n)) for n in names}
        return ids, max(ids.values(), default=0)

    def __call__(self, model: nn.Module) -> list[dict[str, Any]]:
        ids, depth = self.layer_ids(model)
        exempt = _exempt(model, self.patterns)
        groups: dict[str, dict[str, Any]] = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            layer = ids[name]
            key = f"layer_{layer}"
            extra: dict[str, Any] = {}
            if self.no_decay:
                skip = exempt(name, p)
                key += "_no_decay" if skip else "_decay"
                extra = {"weight_decay": 0.0} if skip else {}
            scale = self.decay ** (depth - layer)
            group = groups.setdefault(key, {"name": key, "params": [], "lr_scale": scale, **extra})
            group["params"].append(p)
        return sorted(groups.values(), key=lambda g: (g["name"].split("_")[1].zfill(6), g["name"]))


@dataclass(frozen=True)
class Modules:
    """Named groups by module name: each parameter joins the first group one of whose patterns matches its name,
    the rest join ``rest``; group ``name`` trains at ``lr · lr_scale[name]`` (default 1). Frozen parameters are left
    out.

    Args:
        groups: ``{group name: [module-name patterns]}`` (globs or prefixes), matched in order.
        rest: The name of the group of every other parameter (left out when empty).
        lr_scale: ``{group name: factor}`` on the optimizer's LR, > 0.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        >>> [(g["name"], len(g["params"]), g["lr_scale"]) for g in Modules({"head": ["1"]}, lr_scale={"head": 10.0})(model)]
        [('head', 2, 10.0), ('backbone', 2, 1.0)]
    """

    groups: dict[str, Sequence[str]]
    rest: str = "backbone"
    lr_scale: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.groups, dict) or not self.groups:
            raise ConfigValueError("groups", self.groups, "a map {group name: [module-name patterns]}, e.g. {head: [net.4]}")
        for name, patterns in self.groups.items():
            _check_patterns(f"groups.{name}", patterns, empty_ok=False)
        if not isinstance(self.rest, str) or not self.rest or self.rest in self.groups:
            raise ConfigValueError("rest", self.rest, f"a group name other than {sorted(self.groups)}")
        for name, scale in (self.lr_scale or {}).items():
            if name not in (*self.groups, self.rest):
                raise ConfigValueError(f"lr_scale.{name}", scale, f"keyed by a group: {[*self.groups, self.rest]}")
            check_float(f"lr_scale.{name}", scale, low=0.0, low_open=True)

    def __call__(self, model: nn.Module) -> list[dict[str, Any]]:
        found: dict[str, list[nn.Parameter]] = {name: [] for name in (*self.groups, self.rest)}
        for pname, p in model.named_parameters():
            if p.requires_grad:
                group = next((g for g, patterns in self.groups.items() if _matches(pname, patterns)), self.rest)
                found[group].append(p)
        for name, patterns in self.groups.items():
            if not found[name]:
                raise ConfigValueError(
                    f"param_groups.groups.{name}", list(patterns),
                    f"patterns that match some trainable parameter of `{type(model).__name__}` (its modules: "
                    f"{[n for n, _ in model.named_children()]})",
                )  # fmt: skip
        scales = self.lr_scale or {}
        return [{"name": n, "params": ps, "lr_scale": float(scales.get(n, 1.0))} for n, ps in found.items() if ps]


def _check_patterns(key: str, value: Any, empty_ok: bool = True) -> None:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise ConfigValueError(key, value, "a list of module-name patterns (globs such as *.bias, or prefixes)")
    if not value and not empty_ok:
        raise ConfigValueError(key, list(value), "a non-empty list of module-name patterns, from the input up")


def model_kwargs(cfg: Any) -> dict[str, Any]:
    """The model's ``param_groups`` argument from the run config: none for ``param_groups=none`` (an empty node),
    so a model of the user's own without that argument runs as before; otherwise the builder's node, which Hydra's
    ``instantiate`` builds along with the model (an object passed in its place would be turned into a config)."""
    node = cfg.get("param_groups")
    return {"param_groups": node} if node else {}
