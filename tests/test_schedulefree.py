"""ScheduleFreeCallback with real Trainers and a model with BatchNorm: the optimizer's mode at every training step,
validation and checkpoint; validation on the averaged weights; resumes that continue bit for bit.

The averaged weights are checked against the package's definition, independently of its ``eval()``: in train mode
the parameters hold ``y = (1 - beta) * z + beta * x``, so ``x = (y - (1 - beta) * z) / beta`` (Defazio et al. 2024).
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import LRRecorder, make_trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

schedulefree = pytest.importorskip("schedulefree")

from lrsched_pl import ScheduleCallback  # noqa: E402
from lrsched_pl.compose import Warmup  # noqa: E402
from lrsched_pl.schedulefree import ScheduleFreeCallback  # noqa: E402
from lrsched_pl.schedules import Constant, CosineDecay, OneCycle  # noqa: E402

N_BATCHES = 5
OPTIMIZERS = {
    "sgd": lambda params: schedulefree.SGDScheduleFree(params, lr=0.05, momentum=0.9),
    "adamw": lambda params: schedulefree.AdamWScheduleFree(params, lr=0.02, betas=(0.9, 0.999)),
}


class BNModule(pl.LightningModule):
    """A regression MLP with BatchNorm on fixed data, unshuffled; records the optimizer's mode where it is used."""

    def __init__(self, optimizer: str = "sgd") -> None:
        super().__init__()
        torch.manual_seed(0)
        layers = [torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 1)]
        self.net = torch.nn.Sequential(*layers)
        self.optimizer_name = optimizer
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(8 * N_BATCHES, 4, generator=g)
        self.y = (self.x**2).sum(1, keepdim=True) + 0.1 * torch.randn(8 * N_BATCHES, 1, generator=g)
        self.modes: list[tuple[str, int, bool]] = []  # (where, global_step, train_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _mode(self, where: str) -> None:
        opt = self.trainer.optimizers[0]
        self.modes.append((where, self.trainer.global_step, opt.param_groups[0]["train_mode"]))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self._mode("train")
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._mode("val")
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self(x), y))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x[:16] + 0.5, self.y[:16]), batch_size=16)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.optimizer_name](self.parameters())


class Snapshots(pl.Callback):
    """At the end of every training batch: the train-mode weights ``y`` and the optimizer's ``z``, by global step."""

    def __init__(self) -> None:
        self.y: dict[int, dict[str, torch.Tensor]] = {}
        self.z: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        opt = trainer.optimizers[0]
        step = trainer.global_step
        self.y[step] = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        self.z[step] = {k: opt.state[p]["z"].clone() for k, p in pl_module.named_parameters()}


def beta_of(opt: torch.optim.Optimizer) -> float:
    group = opt.param_groups[0]
    return group["momentum"] if "momentum" in group else group["betas"][0]


def averaged(y: dict[str, torch.Tensor], z: dict[str, torch.Tensor], beta: float) -> dict[str, torch.Tensor]:
    """``x = (y - (1 - beta) * z) / beta``, the average that evaluation must see."""
    return {k: (y[k] - (1 - beta) * z[k]) / beta for k in y}


def val_loss(module: BNModule, params: dict[str, torch.Tensor]) -> float:
    """The validation loss of ``module`` with ``params``, BatchNorm statistics recomputed at them (the recipe)."""
    model = copy.deepcopy(module)
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(params[k])
        torch.optim.swa_utils.update_bn(model.train_dataloader(), model)
        model.eval()
        x, y = model.val_dataloader().dataset.tensors
        return float(torch.nn.functional.mse_loss(model(x), y))


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_modes_and_checkpoints_hold_the_average(tmp_path: Path, optimizer: str) -> None:
    """Train mode at every training step, eval mode in every validation, and every checkpoint (written in train mode
    by ``every_n_train_steps``, or after a validation) holds ``x`` and an optimizer in eval mode."""
    model, snaps = BNModule(optimizer), Snapshots()
    steps_ckpt = ModelCheckpoint(tmp_path / "steps", every_n_train_steps=2, save_top_k=-1, filename="{step}")
    epochs_ckpt = ModelCheckpoint(tmp_path / "epochs", every_n_epochs=1, save_top_k=-1, filename="{epoch}")
    trainer = make_trainer(
        tmp_path, [ScheduleFreeCallback(), snaps, steps_ckpt, epochs_ckpt], max_epochs=2, enable_checkpointing=True
    )
    trainer.fit(model)

    train = [mode for where, _, mode in model.modes if where == "train"]
    val = [mode for where, _, mode in model.modes if where == "val"]
    assert len(train) == 2 * N_BATCHES and all(train)
    assert len(val) == 2 and not any(val)
    beta = beta_of(trainer.optimizers[0])
    for step in (2, 4, 6, 8, 10):
        ckpt = torch.load(tmp_path / "steps" / f"step={step}.ckpt", weights_only=False)
        assert all(not g["train_mode"] for g in ckpt["optimizer_states"][0]["param_groups"])
        expected = averaged(snaps.y[step], snaps.z[step], beta)
        for k, v in expected.items():
            torch.testing.assert_close(ckpt["state_dict"][k], v, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(ckpt["state_dict"]["net.0.weight"], snaps.y[step]["net.0.weight"])
    for epoch in (0, 1):
        ckpt = torch.load(tmp_path / "epochs" / f"epoch={epoch}.ckpt", weights_only=False)
        assert all(not g["train_mode"] for g in ckpt["optimizer_states"][0]["param_groups"])
        step = (epoch + 1) * N_BATCHES
        expected = averaged(snaps.y[step], snaps.z[step], beta)
        torch.testing.assert_close(ckpt["state_dict"]["net.0.weight"], expected["net.0.weight"], rtol=1e-5, atol=1e-6)
    # after fit the module holds the average too
    assert not trainer.optimizers[0].param_groups[0]["train_mode"]


def test_validation_sees_the_averaged_weights(tmp_path: Path) -> None:
    """The logged ``val/loss`` is the loss at ``x`` (BatchNorm recomputed there), not at the training weights ``y``."""
    model, snaps = BNModule("sgd"), Snapshots()
    trainer = make_trainer(tmp_path, [ScheduleFreeCallback(), snaps], max_epochs=2)
    trainer.fit(model)
    logged = float(trainer.callback_metrics["val/loss"])
    last = 2 * N_BATCHES
    at_x = val_loss(model, averaged(snaps.y[last], snaps.z[last], beta_of(trainer.optimizers[0])))
    at_y = val_loss(model, snaps.y[last])
    assert math.isclose(logged, at_x, rel_tol=1e-4), (logged, at_x)
    assert abs(at_y - at_x) > 100 * abs(logged - at_x) + 1e-3, (logged, at_x, at_y)


def _fit(tmp_path: Path, optimizer: str, max_epochs: int, ckpt_path: Path | None, **kwargs: Any):
    model, lrs = BNModule(optimizer), LRRecorder()
    # cosine on top of a schedule-free optimizer: allowed, with a warning
    callbacks = [ScheduleCallback(CosineDecay(), interval="step"), ScheduleFreeCallback(), lrs]
    ckpt = ModelCheckpoint(tmp_path / "ckpt", every_n_epochs=1, save_top_k=-1, filename="{epoch}")
    trainer = make_trainer(tmp_path, [*callbacks, ckpt], max_epochs=max_epochs, enable_checkpointing=True, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, ckpt_path=ckpt_path)
    assert any("decays the LR" in str(w.message) for w in caught)
    return trainer, model, lrs.lrs


@pytest.mark.parametrize(
    ("optimizer", "validation"), [("sgd", "validation"), ("sgd", "no_validation"), ("adamw", "no_validation")]
)
def test_resume_continues_identically(tmp_path: Path, optimizer: str, validation: str) -> None:
    """Resumed from an epoch-end checkpoint (after a validation, or written in train mode when there is none), the
    LR at every later step and the final weights and optimizer state equal (==) the uninterrupted run's."""
    kwargs = {} if validation == "validation" else {"limit_val_batches": 0}
    full, full_model, full_lrs = _fit(tmp_path / "full", optimizer, 4, None, **kwargs)
    ckpt = tmp_path / "full" / "ckpt" / "epoch=1.ckpt"
    assert not torch.load(ckpt, weights_only=False)["optimizer_states"][0]["param_groups"][0]["train_mode"]
    resumed, resumed_model, resumed_lrs = _fit(tmp_path / "resumed", optimizer, 4, ckpt, **kwargs)

    later = sorted(k for k in full_lrs if k >= 2 * N_BATCHES)
    assert sorted(resumed_lrs) == later and len(later) == 2 * N_BATCHES
    assert [resumed_lrs[k] for k in later] == [full_lrs[k] for k in later]
    for (name, a), (_, b) in zip(full_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.isfinite(a).all() and torch.equal(a, b), name
    sa, sb = full.optimizers[0].state_dict(), resumed.optimizers[0].state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for key, value in sa["state"][i].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(sb["state"][i][key])), key


def test_cycled_momentum_is_refused(tmp_path: Path) -> None:
    callbacks = [ScheduleCallback(OneCycle(), interval="step"), ScheduleFreeCallback()]
    trainer = make_trainer(tmp_path, callbacks, max_epochs=1)
    with pytest.raises(RuntimeError, match=r"cycles momentum.*`schedule.cycle_momentum=false`"):
        trainer.fit(BNModule("sgd"))


def test_constant_with_warmup_is_not_warned_about(tmp_path: Path) -> None:
    callbacks = [ScheduleCallback(Warmup(Constant(), 3), interval="step"), ScheduleFreeCallback()]
    trainer = make_trainer(tmp_path, callbacks, max_epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(BNModule("sgd"))
    assert not any("decays the LR" in str(w.message) for w in caught)
