"""Resuming into a longer run with ``rebind=true``: the rest of the checkpoint's curve is stretched to the new end,
with no jump at the restored step; without it the schedule is bound anew and the LR jumps (warned).

The reference is the closed form of :mod:`lrsched_pl.rebind` applied to torch's ``CosineAnnealingLR`` values
(an uninterrupted cosine run over the old length, read at the stretched time).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import LRRecorder, TinyModule, make_trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lrsched_pl import CosineDecay, ScheduleCallback, StepDecay
from lrsched_pl.rebind import Rebound

N_BATCHES, LR0 = 5, 0.1


def cosine(t: float, total: int) -> float:
    """torch ``CosineAnnealingLR``'s closed form (eta_min 0), held at 0 past ``total`` as ours is."""
    return LR0 * (1 + math.cos(math.pi * min(t, total) / total)) / 2


def stretched(t: int, t0: int, old: int, new: int) -> float:
    return t if t <= t0 else t0 + (t - t0) * (old - t0) / (new - t0)


def fit(tmp_path: Path, callback: ScheduleCallback, epochs: int, ckpt: Path | None = None) -> tuple[LRRecorder, list[str]]:
    recorder = LRRecorder()
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", every_n_epochs=1, save_top_k=-1)
    trainer = make_trainer(tmp_path, [callback, recorder, saver], max_epochs=epochs, logger=False, enable_checkpointing=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyModule(lrs=(LR0,), n_batches=N_BATCHES), ckpt_path=ckpt)
    return recorder, [str(w.message) for w in caught if "ScheduleCallback" in str(w.message)]


@pytest.fixture(scope="module")
def parent(tmp_path_factory: Any) -> tuple[Path, LRRecorder]:
    """A 4-epoch (20-step) cosine run with a checkpoint after every epoch."""
    root = tmp_path_factory.mktemp("parent")
    recorder, messages = fit(root, ScheduleCallback(CosineDecay(), interval="step"), epochs=4)
    assert messages == []
    return root, recorder


def test_rebind_stretches_the_rest_of_the_curve_to_the_longer_run(tmp_path: Path, parent) -> None:
    root, full = parent
    ckpt = root / "ckpt" / "epoch=1.ckpt"  # after step 10 of 20
    resumed, messages = fit(tmp_path, ScheduleCallback(CosineDecay(), interval="step", rebind=True), 6, ckpt)
    assert messages == []  # a rebind is what was asked: nothing to warn about
    assert sorted(resumed.lrs) == list(range(10, 30))
    assert resumed.lrs[10][0] == full.lrs[10][0]  # no jump at the restored step
    for t in range(10, 30):
        assert math.isclose(resumed.lrs[t][0], cosine(stretched(t, 10, 20, 30), 20), rel_tol=1e-12), t
    assert resumed.lrs[29][0] < 0.002  # it still decays to the end, now at the new end

    # resumed again from the rebound run's own checkpoint, into a longer run still: the stretches chain
    again, messages = fit(tmp_path / "again", ScheduleCallback(CosineDecay(), interval="step", rebind=True), 8,
                          tmp_path / "ckpt" / "epoch=3.ckpt")  # fmt: skip
    assert messages == [] and again.lrs[20][0] == resumed.lrs[20][0]
    for t in range(20, 40):
        assert math.isclose(again.lrs[t][0], cosine(stretched(stretched(t, 20, 30, 40), 10, 20, 30), 20), rel_tol=1e-12)


def test_without_rebind_the_schedule_is_bound_anew_and_the_jump_is_warned(tmp_path: Path, parent) -> None:
    root, full = parent
    resumed, messages = fit(tmp_path, ScheduleCallback(CosineDecay(), interval="step"), 6, root / "ckpt" / "epoch=1.ckpt")
    assert len(messages) == 1 and "rebind=true" in messages[0] and "jump" in messages[0]
    assert resumed.lrs[10][0] == pytest.approx(cosine(10, 30)) and resumed.lrs[10][0] != full.lrs[10][0]


def test_a_schedule_that_ignores_the_run_length_continues_unchanged(tmp_path: Path) -> None:
    first, _ = fit(tmp_path / "a", ScheduleCallback(StepDecay(step_size=3, gamma=0.5), interval="step", rebind=True), 4)
    resumed, messages = fit(
        tmp_path / "b", ScheduleCallback(StepDecay(step_size=3, gamma=0.5), interval="step", rebind=True), 6,
        tmp_path / "a" / "ckpt" / "epoch=1.ckpt",
    )  # fmt: skip
    assert messages == []
    assert all(resumed.lrs[t][0] == LR0 * 0.5 ** (t // 3) for t in range(10, 30))
    assert all(resumed.lrs[t] == first.lrs[t] for t in range(10, 20))


def test_the_stretch_is_continuous_and_ends_where_the_old_curve_ended() -> None:
    old = CosineDecay(min_lr=0.01).bind(100)
    for t0 in (0, 1, 50, 99):
        warped = Rebound(old, t0, 100, 250)
        assert warped(t0, 1.0) == old(t0, 1.0)
        assert math.isclose(warped(250, 1.0), old(100, 1.0))
        values = [warped(t, 1.0) for t in range(t0, 251)]
        assert all(a >= b for a, b in zip(values, values[1:]))  # still a decay, no bump
    finished = Rebound(old, 120, 100, 200)  # resumed after the old curve ended: it stays at its end
    assert finished(150, 1.0) == old(100, 1.0) == 0.01
