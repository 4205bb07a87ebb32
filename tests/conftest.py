"""Shared fixtures: a tiny LightningModule, an LR recorder, Hydra composition and TensorBoard read-back."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

# One intra-op thread in every process of the suite (this one and every train.py it starts, which inherit it), set
# before torch loads: the models here are tiny, and with more processes than cores (joblib workers, DDP ranks, a
# shared 2-core machine) torch's OpenMP threads spin against each other (tests/test_train.py: 30 -> 21 CPU seconds).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning.pytorch as pl  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*GPU available but not used.*")


class TinyModule(pl.LightningModule):
    """A linear regression on fixed random data; logs ``val/loss`` (or a scripted ``val/metric``).

    Args:
        lrs: The LR of each param group (one group per entry).
        n_batches: Training batches per epoch.
        metrics: If given, ``val/metric`` at epoch ``e`` is ``metrics[e]`` (or, with several validations per
            epoch, ``metrics[index of this validation]``), logged in ``on_validation_epoch_end``.
        sanity_metric: Logged as ``val/metric`` during the sanity check.
        scheduler: Optional factory ``optimizer -> lr_scheduler config`` returned by ``configure_optimizers``.
    """

    def __init__(
        self,
        lrs: tuple[float, ...] = (0.1,),
        n_batches: int = 5,
        metrics: list[float] | None = None,
        sanity_metric: float | None = None,
        scheduler: Any = None,
        optimizer: str = "sgd",
    ) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 1) for _ in lrs)
        self.lrs = lrs
        self.n_batches = n_batches
        self.metrics = metrics
        self.sanity_metric = sanity_metric
        self.scheduler = scheduler
        self.optimizer_name = optimizer
        self.validations = 0
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(8 * n_batches, 4, generator=g)
        self.y = torch.randn(8 * n_batches, 1, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(layer(x) for layer in self.layers)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self(x), y))

    def on_validation_epoch_end(self) -> None:
        if self.metrics is None:
            return
        if self.trainer.sanity_checking:
            if self.sanity_metric is not None:
                self.log("val/metric", self.sanity_metric)
            return
        self.log("val/metric", self.metrics[self.validations])
        self.validations += 1

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x[:16], self.y[:16]), batch_size=8)

    def configure_optimizers(self) -> Any:
        groups = [{"params": layer.parameters(), "lr": lr} for layer, lr in zip(self.layers, self.lrs)]
        opt = torch.optim.SGD(groups, lr=self.lrs[0]) if self.optimizer_name == "sgd" else torch.optim.Adam(groups)
        if self.scheduler is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": self.scheduler(opt)}


class LRRecorder(pl.Callback):
    """Records, for every optimizer step ``k`` (= ``global_step`` before it), the LR of each param group."""

    def __init__(self) -> None:
        self.lrs: dict[int, list[float]] = {}

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        self.lrs[trainer.global_step] = [g["lr"] for g in optimizer.param_groups]


def make_trainer(tmp_path: Path, callbacks: list[pl.Callback], **kwargs: Any) -> pl.Trainer:
    """A quiet CPU Trainer writing TensorBoard events into ``tmp_path``."""
    from lightning.pytorch.loggers import TensorBoardLogger

    options: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=3,
        logger=TensorBoardLogger(tmp_path, name="", version="", default_hp_metric=False),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


def read_scalars(logdir: Path | str, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of every event of ``tag`` in ``logdir``, read with TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def f32_equal(a: float, b: float) -> bool:
    """Equality at TensorBoard's float32 precision."""
    return float(torch.tensor(a, dtype=torch.float32)) == float(torch.tensor(b, dtype=torch.float32))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


@pytest.fixture
def compose(tmp_path: Path):
    """``compose(*overrides)`` -> the real `train` config, composed by Hydra, writing into ``tmp_path``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir


    def _compose(*overrides: str, output_dir: Path | None = None):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return hydra_compose(
                "train", overrides=[f"output_dir={output_dir or tmp_path}", *overrides]
            )

    return _compose


def assert_curves_close(ours: list[list[float]], ref: list[list[float]]) -> None:
    """Two LR curves (a row per step, a value per param group) equal within :func:`close`, step by step."""
    assert len(ours) == len(ref)
    for t, (a, b) in enumerate(zip(ours, ref)):
        assert all(close(x, y) for x, y in zip(a, b)), f"t={t}: ours {a} != reference {b}"


def torch_lr_curve(make: Any, n: int, lrs: tuple[float, ...]) -> list[list[float]]:
    """The LR of each param group (initial LRs ``lrs``) at t = 0 .. n - 1 under the torch scheduler ``make(opt)``
    on a dummy SGD optimizer, stepped once per interval: the reference curve."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    opt = torch.optim.SGD(groups, lr=lrs[0])
    sched = make(opt)
    curve = []
    for _ in range(n):
        curve.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return curve


def hf_wsd(current_step: int, *, num_warmup_steps: int, num_decay_steps: int,
           num_training_steps: int | None = None, num_stable_steps: int | None = None, warmup_type: str = "linear",
           decay_type: str = "cosine", min_lr_ratio: float = 0.0, num_cycles: float = 0.5) -> float:  # fmt: skip
    """HuggingFace's warmup-stable-decay factor at ``current_step``, the test oracle for ``schedule=wsd`` and the
    warmup shapes: ``transformers.optimization.get_wsd_schedule`` (its arguments; ``num_stable_steps`` defaults to
    ``num_training_steps - num_warmup_steps - num_decay_steps``) and ``_get_wsd_scheduler_lambda``, written out."""
    if num_stable_steps is None:
        assert num_training_steps is not None, "get_wsd_schedule needs num_training_steps or num_stable_steps"
        num_stable_steps = num_training_steps - num_warmup_steps - num_decay_steps
    if current_step < num_warmup_steps:
        progress = float(current_step) / float(max(1, num_warmup_steps))
        if warmup_type == "linear":
            factor = progress
        elif warmup_type == "cosine":
            factor = 0.5 * (1.0 - math.cos(math.pi * progress))
        elif warmup_type == "1-sqrt":
            factor = 1.0 - math.sqrt(1.0 - progress)
        factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio
        return max(0.0, factor)
    if current_step < num_warmup_steps + num_stable_steps:
        return 1.0
    if current_step < num_warmup_steps + num_stable_steps + num_decay_steps:
        progress = float(current_step - num_warmup_steps - num_stable_steps) / float(max(1, num_decay_steps))
        if decay_type == "linear":
            factor = 1.0 - progress
        elif decay_type == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
        elif decay_type == "1-sqrt":
            factor = 1.0 - math.sqrt(progress)
        factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio
        return max(0.0, factor)
    return min_lr_ratio
