"""Cooldown branches from a mid-run checkpoint of a constant-LR run, through ``lrsched_pl.run.train``: the LR at every
step of the branch is the closed form, the branch ends at ``until``, its curves continue at the parent's step, and
the parent's files are unchanged."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
from conftest import f32_equal, read_scalars

PARENT = ["schedule=constant", "schedule.interval=step", "optimizer.lr=0.2", "trainer.max_epochs=2",
          "trainer.limit_train_batches=6", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
          "callbacks.model_checkpoint.every_n_train_steps=4", "callbacks.model_checkpoint.save_top_k=-1",
          "callbacks.model_checkpoint.filename='{step}'"]  # fmt: skip
SHAPES = {"linear": lambda p: 1 - p, "cosine": lambda p: (1 + math.cos(math.pi * p)) / 2,
          "1-sqrt": lambda p: 1 - math.sqrt(p)}  # fmt: skip


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_branch_cools_down_from_the_checkpoint(compose, tmp_path: Path, shape: str) -> None:
    from lrsched_pl.run import train

    parent = tmp_path / "parent"
    train(compose(*PARENT, output_dir=parent))
    ckpt = parent / "checkpoints" / "step=4.ckpt"
    before = _digest(parent)
    branch = tmp_path / "branch"
    until, min_lr = 10, 0.01  # mid-epoch: 6 steps per epoch
    train(compose(
        *PARENT, f"ckpt_path='{ckpt}'", "trainer.max_epochs=-1", "trainer.max_steps=${callbacks.cooldown.until}",
        "+callbacks.cooldown._target_=lrsched_pl.cooldown.CooldownCallback", f"+callbacks.cooldown.until={until}",
        f"+callbacks.cooldown.shape={shape}", f"+callbacks.cooldown.min_lr={min_lr}", output_dir=branch,
    ))  # fmt: skip
    assert _digest(parent) == before
    lrs = read_scalars(branch, "lr-SGD")
    assert [s for s, _ in lrs] == list(range(4, until))  # the branch's curve starts at the parent's step
    for t, value in lrs:
        expected = min_lr + (0.2 - min_lr) * SHAPES[shape]((t - 4) / (until - 4))
        assert f32_equal(value, expected), (t, value, expected)
    assert read_scalars(branch, "train/loss")[-1][0] == until - 1  # it ends at `until`, mid-epoch,
    assert read_scalars(branch, "val/loss")[-1][0] == until - 1  # with a validation there
