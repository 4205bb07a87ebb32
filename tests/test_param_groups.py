"""Param-group builders: `no_decay` and `layer_decay` from the config, against their definitions and timm's formula.

``layer_decay``: each named group's LR at every step is ``schedule(t) · lr · decay^(depth − layer)`` (timm
``param_groups_layer_decay``'s ``layer_decay ** (layer_max − layer_id)``), read from the optimizer and from
TensorBoard (``lr-SGD/<group name>``, Lightning's LearningRateMonitor) with a frozen block in the model. ``no_decay``
puts exactly the biases and normalization weights in the ``weight_decay = 0`` group.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import LRRecorder, f32_equal, make_trainer, read_scalars
from lightning.pytorch.callbacks import LearningRateMonitor
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrsched_pl.callback import ScheduleCallback
from lrsched_pl.compose import Warmup
from lrsched_pl.config import validate
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.param_groups import LayerDecay, NoDecay, make_optimizer
from lrsched_pl.schedules import CosineDecay

LR, DECAY, WD = 0.1, 0.5, 0.05


class Blocks(pl.LightningModule):
    """``embed`` -> ``blocks.0 .. blocks.2`` (each Linear + LayerNorm) -> ``head``; ``blocks.1`` frozen."""

    def __init__(self, builder: Any = None, freeze: bool = True) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)) for _ in range(3))
        self.head = nn.Linear(8, 1)
        if freeze:
            self.blocks[1].requires_grad_(False)
        self.builder = builder
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)

    def layer_id(self, name: str) -> int:
        """embed 0, blocks.i i + 1, head 4."""
        if name.startswith("embed."):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(partial(torch.optim.SGD, lr=LR, weight_decay=WD), self, self.builder)


PATTERNS = ["embed", "blocks.0", "blocks.1", "blocks.2"]  # layers 0..3 from the input up; the head is layer 4
# (group name, layer) of every trainable parameter's group: blocks.1 (layer 2) is frozen and has none
EXPECTED = {"layer_0_decay": 0, "layer_0_no_decay": 0, "layer_1_decay": 1, "layer_1_no_decay": 1,
            "layer_3_decay": 3, "layer_3_no_decay": 3, "layer_4_decay": 4, "layer_4_no_decay": 4}  # fmt: skip


def names_of(model: nn.Module, group: dict[str, Any]) -> set[str]:
    ids = {id(p): n for n, p in model.named_parameters()}
    return {ids[id(p)] for p in group["params"]}


@pytest.mark.parametrize("layers", [PATTERNS, None], ids=["patterns", "layer_id"])
def test_layer_decay_groups_follow_timms_formula_and_skip_the_frozen_block(layers):
    model = Blocks(LayerDecay(decay=DECAY, layers=layers))
    opt = model.configure_optimizers()
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == set(EXPECTED)
    for name, layer in EXPECTED.items():
        assert groups[name]["lr"] == pytest.approx(LR * DECAY ** (4 - layer), rel=1e-15)  # depth 4: the head
        assert groups[name]["weight_decay"] == (0.0 if name.endswith("no_decay") else WD)
        assert "lr_scale" not in groups[name]  # applied once, then gone
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    grouped = set().union(*(names_of(model, g) for g in opt.param_groups))
    assert frozen == {"blocks.1.0.weight", "blocks.1.0.bias", "blocks.1.1.weight", "blocks.1.1.bias"}
    assert grouped == {n for n, _ in model.named_parameters()} - frozen
    assert names_of(model, groups["layer_3_no_decay"]) == {"blocks.2.0.bias", "blocks.2.1.weight", "blocks.2.1.bias"}
    # freezing a block shifts no other layer's scale
    unfrozen_opt = Blocks(LayerDecay(decay=DECAY, layers=layers), freeze=False).configure_optimizers()
    unfrozen = {g["name"]: g["lr"] for g in unfrozen_opt.param_groups}
    assert all(unfrozen[n] == groups[n]["lr"] for n in groups)


def test_layer_decay_lr_of_every_named_group_at_every_step(tmp_path: Path):
    """A real Trainer with a warmup + cosine schedule: each group's LR is schedule(t) · lr · decay^(depth − layer),
    in the optimizer before every step and in TensorBoard under lr-SGD/<group name>."""
    schedule = Warmup(CosineDecay(), 3)
    recorder = LRRecorder()
    model = Blocks(LayerDecay(decay=DECAY, layers=PATTERNS))
    callbacks = [ScheduleCallback(schedule, interval="step"), recorder, LearningRateMonitor(logging_interval="step")]
    make_trainer(tmp_path, callbacks, max_epochs=3).fit(model)  # 4 batches x 3 epochs
    steps = 12
    bound = schedule.bind(steps)
    names = [g["name"] for g in model.trainer.optimizers[0].param_groups]
    assert sorted(recorder.lrs) == list(range(steps))
    for t, lrs in recorder.lrs.items():
        for name, lr in zip(names, lrs):
            assert lr == pytest.approx(bound(t, LR * DECAY ** (4 - EXPECTED[name])), rel=1e-12), (t, name)
    for name in names:
        logged = read_scalars(tmp_path, f"lr-SGD/{name}")
        assert [s for s, _ in logged] == list(range(steps))
        assert all(f32_equal(v, bound(s, LR * DECAY ** (4 - EXPECTED[name]))) for s, v in logged), name


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.bn = nn.BatchNorm1d(3)
        self.emb = nn.Embedding(5, 3)
        self.fc = nn.Linear(3, 3)
        self.ln = nn.LayerNorm(3)
        self.out = nn.Linear(3, 2, bias=False)
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)


def test_no_decay_puts_exactly_the_biases_and_norm_weights_in_the_zero_group():
    model = Mixed()
    opt = make_optimizer(partial(torch.optim.AdamW, lr=1e-3, weight_decay=WD), model, NoDecay())
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"decay", "no_decay"}
    assert groups["no_decay"]["weight_decay"] == 0.0 and groups["decay"]["weight_decay"] == WD
    assert names_of(model, groups["no_decay"]) == {
        "conv.bias", "bn.weight", "bn.bias", "fc.bias", "ln.weight", "ln.bias"
    }  # fmt: skip
    assert names_of(model, groups["decay"]) == {"conv.weight", "emb.weight", "fc.weight", "out.weight"}
    assert all(g["lr"] == 1e-3 for g in opt.param_groups)


def test_no_decay_patterns_exempt_more_and_none_is_one_unnamed_group():
    model = Mixed()
    groups = NoDecay(patterns=["*.bias", "emb"])(model)
    assert "emb.weight" in names_of(model, groups[1])
    opt = make_optimizer(partial(torch.optim.SGD, lr=0.1), model, None)
    assert len(opt.param_groups) == 1 and "name" not in opt.param_groups[0]


def test_layer_decay_without_patterns_needs_layer_id():
    with pytest.raises(ConfigValueError, match="param_groups.layers"):
        LayerDecay()(Mixed())


# ---------------------------------------------------------------------------------------------------------------
# From the config
# ---------------------------------------------------------------------------------------------------------------


def test_the_default_is_none_and_options_validate(compose):
    assert not compose().param_groups  # none: an empty node, today's single group
    for option in ("none", "no_decay", "layer_decay"):
        validate(compose(f"param_groups={option}"))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["param_groups=layer_decay", "param_groups.decay=1.5"], "param_groups.decay"),
        (["param_groups=layer_decay", "param_groups.layers=[]"], "param_groups.layers"),
        (["param_groups=layer_decay", "param_groups.no_decay=3"], "param_groups.no_decay"),
        (["param_groups=no_decay", "param_groups.patterns=bias"], "param_groups.patterns"),
        (["param_groups=no_decay", "+param_groups.weight_decay=0.1"], "param_groups.weight_decay"),
        (["param_groups=no_decay", "model._target_=conftest.TinyModule", "~model.num_features", "~model.num_classes",
          "~model.hidden", "~model.dropout"], "param_groups"),  # fmt: skip
    ],
)
def test_bad_param_groups_are_refused_naming_the_key(compose, overrides, key):
    with pytest.raises(ConfigValueError) as info:
        validate(compose(*overrides))
    assert info.value.key == key


@pytest.mark.slow
def test_layer_decay_from_the_config_trains_the_default_model(compose, tmp_path: Path):
    """train.py's run: the default classifier's own layer_id, two groups per layer, named in TensorBoard."""
    from lrsched_pl.run import train

    small = ["trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
             "trainer.enable_progress_bar=false", "model.hidden=[16,16]"]  # fmt: skip
    train(compose("param_groups=layer_decay", "param_groups.decay=0.5", "schedule=cosine", *small))
    lr = float(compose().optimizer.lr)
    cosine = CosineDecay().bind(4)
    for layer in range(3):  # net.0, net.3, the head net.6: depth 2
        for kind in ("decay", "no_decay"):
            logged = read_scalars(tmp_path, f"lr-SGD/layer_{layer}_{kind}")
            assert [s for s, _ in logged] == [0, 1, 2, 3]
            assert all(f32_equal(v, cosine(s, lr * 0.5 ** (2 - layer))) for s, v in logged)
