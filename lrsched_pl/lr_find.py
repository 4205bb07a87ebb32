"""The LR range test (Smith 2017) on the configured model and data, its suggestion written for the schedule.

    python -m lrsched_pl.lr_find schedule=cosine optimizer=adamw       # -> outputs/lr_find/<date>/<time>_cosine/
    python -m lrsched_pl.lr_find schedule=onecycle --num-training 200  # suggests schedule.max_lr
    python train.py lr_find=true schedule=cosine                       # the test first, then trains with its LR

Lightning's LR finder (``Tuner.lr_find``) trains a copy of the configured model for ``num_training`` optimizer steps
while the LR grows exponentially from ``min_lr`` to ``max_lr`` (stopping early once the loss exceeds 4x its best),
and records the smoothed loss at each LR. The suggestion is the LR of the steepest descent of that loss against
``log(lr)``, left of the loss's minimum (:func:`steepest_descent`, fastai's "steep"). Lightning's own
``suggestion()`` takes the gradient against ``lr`` itself, which on an exponential sweep divides by ``lr`` and so
picks noise in the flat low-LR part (on the default task: 7e-6 for SGD, whose loss falls fastest near 0.4); it is
written next to ours for reference. The suggestion is the schedule's **peak** LR: it goes to
``optimizer.lr`` (the ``lr0`` that every schedule scales), or to ``schedule.max_lr`` for ``onecycle`` and
``cyclic``, whose peak is their own key. The output directory gets ``lr_find.png`` (loss against LR, the
suggestion marked), ``lr_find.csv``, ``suggestion.yaml`` (a config snippet) and ``command.txt`` (a ready-to-run
``train.py`` line), and a TensorBoard event file with the plot, the curve and the command.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lrsched_pl.errors import ConfigValueError, check_float, check_int

log = logging.getLogger(__name__)

PEAK_KEYS = {"onecycle": "schedule.max_lr", "cyclic": "schedule.max_lr"}  # else optimizer.lr


@dataclass(frozen=True)
class Suggestion:
    """The range test's outcome.

    Attributes:
        key: The config key that takes the LR (``optimizer.lr`` or ``schedule.max_lr``).
        lr: The suggested peak LR.
        command: A ``python train.py`` line that trains with it.
        out_dir: Where the plot, the snippet and the events were written.
    """

    key: str
    lr: float
    command: str
    out_dir: Path


def peak_key(cfg: DictConfig) -> str:
    """The key that sets the schedule's peak LR: ``schedule.max_lr`` for onecycle and cyclic, else ``optimizer.lr``."""
    return PEAK_KEYS.get(str(cfg.schedule.get("name")), "optimizer.lr")


def find_lr(
    cfg: DictConfig,
    out_dir: str | Path,
    overrides: Sequence[str] = (),
    num_training: int = 100,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
) -> Suggestion:
    """Runs the range test for ``cfg``'s model, data, optimizer and trainer, and writes its results to ``out_dir``.

    The test uses a model and data module of its own (seeded with ``cfg.seed``) and a Trainer without logger,
    callbacks or checkpoints; ``cfg`` is not changed.

    Args:
        cfg: A validated run config.
        out_dir: The directory to write into (created).
        overrides: The command-line overrides ``cfg`` came from, for ``command.txt``.
        num_training: Optimizer steps of the test (LRs tried), >= 12 (Lightning skips the first 10 and the last).
        min_lr: The first LR, > 0.
        max_lr: The last LR, > ``min_lr``.

    Raises:
        ConfigValueError: On a bad argument.
        RuntimeError: If the test gave no suggestion (it diverged within its first steps).
    """
    check_int("num_training", num_training, low=12)
    check_float("min_lr", min_lr, low=0.0, low_open=True)
    check_float("max_lr", max_lr, low=min_lr, low_open=True)
    import lightning.pytorch as pl
    from hydra.utils import instantiate
    from lightning.pytorch.tuner import Tuner

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    factory = instantiate(cfg.optimizer)
    if str(cfg.optimizer.get("_target_", "")).startswith("schedulefree."):
        factory = _in_train_mode(factory)  # the finder replaces every callback, ScheduleFreeCallback included
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, optimizer=factory, _convert_="all")
    trainer = instantiate(
        cfg.trainer, logger=False, callbacks=[], max_epochs=-1, max_steps=-1, enable_checkpointing=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(out_dir),
    )  # fmt: skip
    finder = Tuner(trainer).lr_find(
        model, datamodule=datamodule, min_lr=min_lr, max_lr=max_lr, num_training=num_training, update_attr=False
    )
    if finder is not None:
        finder.results["loss"] = unbias(finder.results["loss"])
    lr = steepest_descent(finder.results["lr"], finder.results["loss"]) if finder is not None else None
    if lr is None:
        raise RuntimeError(
            f"The LR range test gave no suggestion: the loss diverged within its first steps between min_lr={min_lr} "
            f"and max_lr={max_lr}. Lower `--max-lr`, or raise `--num-training` (now {num_training})."
        )
    key = peak_key(cfg)
    kept = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~") in (key, "lr_find")]
    command = shlex.join(["python", "train.py", *kept, f"{key}={lr:.4g}"])
    suggestion = Suggestion(key, float(f"{lr:.4g}"), command, out_dir)
    _write(finder, suggestion, num_training, min_lr, max_lr)
    return suggestion


def unbias(losses: Sequence[float], beta: float = 0.98) -> list[float]:
    """Lightning's smoothed losses with their bias correction made exact.

    Lightning's finder keeps ``avg_k = beta * avg_{k-1} + (1 - beta) * loss_k`` and records ``avg_k / (1 - beta **
    (k + 2))`` for the ``k``-th step (0-based): it reads ``global_step`` after the step, one too many (lightning 2.6;
    the rising start of its plots, Lightning-AI/pytorch-lightning#14167): the first point is half the loss, the 10th
    7 % low, enough to make the start the curve's minimum. This returns ``avg_k / (1 - beta ** (k + 1))``, the
    exponential average of the losses so far.
    """
    return [v * (1 - beta ** (k + 2)) / (1 - beta ** (k + 1)) for k, v in enumerate(losses)]


def steepest_descent(lrs: Sequence[float], losses: Sequence[float], skip_begin: int = 10) -> float | None:
    """The LR where the loss falls fastest against ``log(lr)``, among the LRs left of the lowest loss.

    ``argmin_i d loss / d log(lr)`` over ``i`` in ``[skip_begin, argmin(loss))``, non-finite losses left out; the
    first ``skip_begin`` points are skipped as Lightning's ``suggestion()`` does (its smoothing starts from 0 and
    rises there, Lightning-AI/pytorch-lightning#14167). Right of the minimum the loss diverges, and a fall after a
    spike is no advice.

    Returns:
        The LR, or ``None`` with fewer than 2 usable points.
    """
    import torch

    lr = torch.tensor(lrs[skip_begin:], dtype=torch.float64)
    loss = torch.tensor(losses[skip_begin:], dtype=torch.float64)
    finite = torch.isfinite(loss)
    lr, loss = lr[finite], loss[finite]
    if len(loss) < 2:
        return None
    end = max(int(torch.argmin(loss)), 2)  # at least two points for a gradient
    lr, loss = lr[:end], loss[:end]
    slope = torch.gradient(loss, spacing=[lr.log()])[0]
    return float(lr[int(torch.argmin(slope))])


def apply(cfg: DictConfig) -> Suggestion:
    """For ``lr_find=true``: runs the test into ``<output_dir>/lr_find`` and sets its suggestion in ``cfg``.

    Raises:
        ConfigValueError: If the suggestion does not fit the schedule (e.g. below ``schedule.min_lr``).
    """
    from lrsched_pl.config import validate

    suggestion = find_lr(cfg, Path(cfg.output_dir) / "lr_find")
    OmegaConf.update(cfg, suggestion.key, suggestion.lr, merge=False)
    validate(cfg)
    log.info("LR range test: training with %s=%s (%s)", suggestion.key, suggestion.lr, suggestion.out_dir)
    return suggestion


def _in_train_mode(factory: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The optimizer factory, its schedule-free optimizer put in train mode (the finder only trains)."""

    def build(params: Any) -> Any:
        optimizer = factory(params)
        optimizer.train()
        return optimizer

    return build


def _write(finder: Any, suggestion: Suggestion, num_training: int, min_lr: float, max_lr: float) -> None:
    """Writes the plot, the curve, the snippet, the command and the TensorBoard events into ``suggestion.out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    out = suggestion.out_dir
    lrs, losses = finder.results["lr"], finder.results["loss"]
    lightning_lr = finder.suggestion()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(lrs, losses, label="smoothed training loss")
    for lr, style, label in ((suggestion.lr, dict(color="red"), "suggestion"),
                             (lightning_lr, dict(color="gray", mfc="none"), "Lightning's suggestion()")):  # fmt: skip
        if lr is not None:
            i = min(range(len(lrs)), key=lambda j: abs(lrs[j] - lr))
            ax.plot([lrs[i]], [losses[i]], "o", markersize=9, label=f"{label} {lr:.4g}", **style)
    ax.set(xlabel="learning rate", ylabel="loss", title=f"LR range test: {suggestion.key}={suggestion.lr:.4g}")
    ax.legend()
    fig.savefig(out / "lr_find.png", dpi=120, bbox_inches="tight")
    with open(out / "lr_find.csv", "w", newline="") as f:
        csv.writer(f).writerows([("lr", "loss"), *zip(lrs, losses)])
    how = (
        f"Lightning's LR finder: {len(lrs)} of {num_training} steps, LR from {min_lr:g} to {max_lr:g} (exponential); "
        "suggestion: the steepest descent of the smoothed loss against log(lr), left of its minimum"
        + (f" (Lightning's suggestion(): {lightning_lr:.4g})" if lightning_lr is not None else "")
    )
    section, name = suggestion.key.split(".")
    snippet = OmegaConf.to_yaml({section: {name: suggestion.lr}})
    (out / "suggestion.yaml").write_text(f"# {how}\n# {suggestion.command}\n{snippet}")
    (out / "command.txt").write_text(suggestion.command + "\n")
    writer = SummaryWriter(str(out))
    try:
        for i, (lr, loss) in enumerate(zip(lrs, losses)):
            writer.add_scalar("lr_find/loss", loss, i)
            writer.add_scalar("lr_find/lr", lr, i)
        writer.add_scalar("lr_find/suggestion", suggestion.lr, 0)
        writer.add_text("lr_find/command", f"{how}\n\n    {suggestion.command}")
        writer.add_figure("lr_find/plot", fig)
    finally:
        writer.close()
        plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lrsched_pl.lr_find",
        description="The LR range test on the configured model and data; writes the suggested peak LR for the "
        "chosen schedule as a config snippet and a ready-to-run train.py command.",
    )
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. schedule=cosine optimizer=adamw")
    parser.add_argument("--out", type=Path, help="output directory (default outputs/lr_find/<date>/<time>_<schedule>)")
    parser.add_argument("--num-training", type=int, default=100, help="optimizer steps, LRs tried (default 100)")
    parser.add_argument("--min-lr", type=float, default=1e-6, help="first LR (default 1e-6)")
    parser.add_argument("--max-lr", type=float, default=1.0, help="last LR (default 1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``lrsched-lr-find``): the range test for ``train.py``'s overrides."""
    args = _parser().parse_args(argv)
    from hydra.errors import HydraException

    from lrsched_pl.config import validate
    from lrsched_pl.preview import compose_config

    try:
        cfg = compose_config([*args.overrides, "output_dir=."])  # the run's own dir is unused here
        validate(cfg)
        out = args.out or Path("outputs/lr_find") / datetime.datetime.now().strftime(
            f"%Y-%m-%d/%H-%M-%S_{cfg.schedule.name}"
        )
        suggestion = find_lr(cfg, out, args.overrides, args.num_training, args.min_lr, args.max_lr)
    except (ConfigValueError, HydraException) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    print(f"Suggested {suggestion.key}: {suggestion.lr:.4g}   (plot, snippet, events: {suggestion.out_dir})")
    print(suggestion.command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
