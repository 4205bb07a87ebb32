"""Preview the LR curve a config would train, without training.

    lrsched-preview schedule=cosine schedule.warmup=0.1dur   # outputs/preview/schedule=cosine_schedule.warmup=0.1dur.png
    lrsched-preview schedule=onecycle --out onecycle.png     # also plots the cycled momentum
    lrsched-preview --gallery docs/gallery                   # one small figure per option

(``python -m lrsched_pl.preview`` is the same command.) Without ``--out`` the file is named after every override in
full, so two previews that differ in any value never overwrite each other; a CSV of the same name lies beside it.

It takes the same overrides as ``train.py``, composes the same config, and computes the run's length the way
Lightning's ``trainer.estimated_stepping_batches`` does (batches per epoch after ``limit_train_batches``, divided
by ``accumulate_grad_batches``, times ``max_epochs``, capped by ``max_steps``). For the default digits data that
needs neither torch nor Lightning, so a preview takes a second or two; a custom data module is instantiated to
count its batches. A plateau's reductions depend on the validation metric and are not shown.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

from omegaconf import DictConfig

from lrsched_pl.config import OPTIONS, build_parts, build_values, validate
from lrsched_pl.paths import conf_dir

DIGITS = "lrsched_pl.data.DigitsDataModule"


@dataclass
class Curve:
    """The LR (and momentum, where the schedule cycles it) at each optimizer step of a run.

    Attributes:
        lr: The first param group's LR (``lr0 = optimizer.lr``) at steps ``0 .. len(lr) - 1``.
        momentum: The momentum (or Adam's beta1) at each step; ``None`` when the schedule leaves it alone.
        values: Every other scheduled value at each step (``wd_schedule``, ``momentum_schedule``,
            ``group_schedules``), by label: ``weight_decay``, ``lr[head]``.
        steps_per_epoch: Optimizer steps per epoch.
        title: The schedule and what was left out.
    """

    lr: list[float]
    momentum: list[float] | None
    steps_per_epoch: int
    title: str
    values: dict[str, list[float]] = field(default_factory=dict)


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The `train` config for ``overrides``, composed by Hydra exactly as ``train.py`` would."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _train_batches(cfg: DictConfig) -> int:
    trainer = cfg.trainer
    devices = trainer.devices if isinstance(trainer.devices, int) and trainer.devices > 0 else 1
    world = devices * int(trainer.num_nodes)
    if cfg.data._target_ == DIGITS:
        from lrsched_pl import digits

        batches = digits.train_batches(cfg.data.batch_size, cfg.data.val_fraction, world)
    else:  # a user's data module: count its batches (this imports Lightning)
        from hydra.utils import instantiate

        datamodule = instantiate(cfg.data, _convert_="all")
        datamodule.setup("fit")
        batches = len(datamodule.train_dataloader())
    limit = trainer.limit_train_batches
    if isinstance(limit, int) and not isinstance(limit, bool):
        batches = min(batches, limit)
    elif isinstance(limit, float):
        batches = int(batches * limit)
    return batches


def run_length(cfg: DictConfig) -> tuple[int, int]:
    """``(optimizer steps per epoch, optimizer steps in the run)``, as ``estimated_stepping_batches`` counts."""
    trainer = cfg.trainer
    if trainer.max_epochs in (None, -1):
        raise ValueError("The preview needs a finite run: set `trainer.max_epochs`.")
    per_epoch = math.ceil(_train_batches(cfg) / trainer.accumulate_grad_batches)
    total = per_epoch * max(int(trainer.max_epochs), 1)
    if trainer.max_steps != -1:
        total = min(total, int(trainer.max_steps))
    return per_epoch, total


def curve(overrides: Sequence[str]) -> Curve:
    """The curve ``python train.py <overrides>`` would train, computed without training."""
    cfg = compose_config(overrides)
    validate(cfg)
    schedule, interval, plateau = build_parts(cfg.schedule, cfg.get("plateau"))
    per_epoch, total = run_length(cfg)
    epochs = math.ceil(total / per_epoch)
    bound = schedule.bind(total if interval == "step" else epochs)
    times = range(total) if interval == "step" else [k // per_epoch for k in range(total)]
    lr0 = float(cfg.optimizer.lr)
    lrs = [bound(t, lr0) for t in times]
    momentum = [bound.momentum(t) for t in times]
    title = " ".join(overrides) or f"schedule={cfg.schedule.name}"
    title += f" ({interval})" + (", plateau reductions not shown" if plateau else "")
    cycled = momentum if momentum and any(m is not None for m in momentum) else None
    if cycled is not None:  # outside a cycling segment: the configured momentum
        cycled = [configured(cfg, "momentum") if m is None else m for m in cycled]  # type: ignore[misc]
    return Curve(lrs, cycled, per_epoch, title, other_values(cfg, total, per_epoch))


def configured(cfg: DictConfig, key: str, group: str | None = None) -> float | None:
    """A param-group key's value as the optimizer config sets it (``lr`` times the builder's ``lr_scale``)."""
    opt = cfg.optimizer
    if key == "momentum":
        value: Any = opt.get("betas", [None])[0] if "betas" in opt else opt.get("momentum")
    else:
        value = opt.get(key)
    if key == "lr" and group is not None and value is not None:
        value = value * float(((cfg.get("param_groups") or {}).get("lr_scale") or {}).get(group, 1.0))
    return None if value is None else float(value)


def other_values(cfg: DictConfig, total: int, per_epoch: int) -> dict[str, list[float]]:
    """Every scheduled value besides the LR of ``schedule``, at each optimizer step (where its ``v0`` is known)."""
    values, _ = build_values(cfg.get("wd_schedule"), cfg.get("momentum_schedule"), cfg.get("group_schedules"), cfg.schedule)
    out = {}
    for value in values:
        v0 = value.start if value.start is not None else configured(cfg, value.key, (value.groups or [None])[0])
        if v0 is None:
            continue
        epochs = math.ceil(total / per_epoch)
        bound = value.schedule.bind(total if value.interval == "step" else epochs)
        times = range(total) if value.interval == "step" else [k // per_epoch for k in range(total)]
        out[value.label] = [bound(t, v0) for t in times]
    return out


def lr_curve(overrides: Sequence[str]) -> list[float]:
    """The LR at each optimizer step that ``python train.py <overrides>`` would use."""
    return curve(overrides).lr


def write_csv(c: Curve, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "epoch", "lr"] + (["momentum"] if c.momentum else []) + list(c.values))
        for k, lr in enumerate(c.lr):
            row = [k, k // c.steps_per_epoch, repr(lr)] + ([repr(c.momentum[k])] if c.momentum else [])
            writer.writerow(row + [repr(v[k]) for v in c.values.values()])


def plot(c: Curve, path: Path, size: tuple[float, float] = (6.0, 3.2)) -> None:
    """A PNG of the LR against the optimizer step (momentum on a second axis where it cycles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 + len(c.values)
    fig, axes = plt.subplots(rows, 1, figsize=(size[0], size[1] * (1 + 0.6 * (rows - 1))), dpi=100, squeeze=False,
                             sharex=True, gridspec_kw={"height_ratios": [1.6] + [1] * (rows - 1)})  # fmt: skip
    ax = axes[0][0]
    for (label, series), row in zip(c.values.items(), axes[1:]):
        row[0].plot(range(len(series)), series, color="tab:green", lw=1.2)
        row[0].set_ylabel(label, fontsize=8)
        row[0].grid(alpha=0.3)
    ax.plot(range(len(c.lr)), c.lr, color="tab:blue", lw=1.6)
    axes[-1][0].set_xlabel("optimizer step")
    ax.set_ylabel("learning rate", color="tab:blue")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if c.momentum:
        ax2 = ax.twinx()
        ax2.plot(range(len(c.momentum)), c.momentum, color="tab:orange", lw=1.0, ls="--")
        ax2.set_ylabel("momentum", color="tab:orange")
    ax.set_title(c.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


GALLERY_EXTRA = {
    "cosine": ["schedule.warmup=0.1dur"],
    "step": ["schedule.step_size=5"],
    "inverse_sqrt": ["schedule.warmup=0.1dur"],
    "wsd": ["schedule.warmup=0.1dur"],
}


def gallery(out_dir: Path) -> list[Path]:
    """One small figure per `schedule=` option over the default run (written by ``--gallery``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for option in OPTIONS:
        c = curve([f"schedule={option}", *GALLERY_EXTRA.get(option, [])])
        path = out_dir / f"{option}.png"
        plot(c, path, size=(4.0, 2.6))
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lrsched_pl.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="the same overrides as train.py, e.g. schedule=cosine")
    parser.add_argument("--out", type=Path, help="PNG path (a CSV is written beside it); default outputs/preview/")
    parser.add_argument("--gallery", type=Path, metavar="DIR", help="write one figure per option into DIR")
    args = parser.parse_args(argv)
    if args.gallery:
        for path in gallery(args.gallery):
            print(path)
        return
    c = curve(args.overrides)
    out = args.out or default_path(args.overrides)
    csv_path = out.with_suffix(".csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(c, out)
    write_csv(c, csv_path)
    print(f"{c.title}: {len(c.lr)} steps, lr {c.lr[0]:.4g} -> {c.lr[-1]:.4g}; wrote {out} and {csv_path}")


def default_path(overrides: Sequence[str]) -> Path:
    """``outputs/preview/<every override, in full>.png``: ``/`` becomes ``-``, dots in values are kept."""
    stem = "_".join(o.replace("/", "-") for o in overrides) or "default"
    return Path("outputs/preview") / f"{stem}.png"


if __name__ == "__main__":
    main()
