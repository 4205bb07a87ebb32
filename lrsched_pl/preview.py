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
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from lrsched_pl.config import OPTIONS, build_parts, validate
from lrsched_pl.paths import conf_dir

DIGITS = "lrsched_pl.data.DigitsDataModule"


@dataclass
class Curve:
    """The LR (and momentum, where the schedule cycles it) at each optimizer step of a run.

    Attributes:
        lr: The first param group's LR (``lr0 = optimizer.lr``) at steps ``0 .. len(lr) - 1``.
        momentum: The momentum (or Adam's beta1) at each step; ``None`` when the schedule leaves it alone.
        steps_per_epoch: Optimizer steps per epoch.
        title: The schedule and what was left out.
    """

    lr: list[float]
    momentum: list[float] | None
    steps_per_epoch: int
    title: str


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
    return Curve(lrs, momentum if momentum and momentum[0] is not None else None, per_epoch, title)


def lr_curve(overrides: Sequence[str]) -> list[float]:
    """The LR at each optimizer step that ``python train.py <overrides>`` would use."""
    return curve(overrides).lr


def write_csv(c: Curve, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "epoch", "lr"] + (["momentum"] if c.momentum else []))
        for k, lr in enumerate(c.lr):
            writer.writerow([k, k // c.steps_per_epoch, repr(lr)] + ([repr(c.momentum[k])] if c.momentum else []))


def plot(c: Curve, path: Path, size: tuple[float, float] = (6.0, 3.2)) -> None:
    """A PNG of the LR against the optimizer step (momentum on a second axis where it cycles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    ax.plot(range(len(c.lr)), c.lr, color="tab:blue", lw=1.6)
    ax.set_xlabel("optimizer step")
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
