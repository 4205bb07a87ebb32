"""Exact resume in real training: the default data (shuffled, with label noise), dropout, and a plateau on the real
``val/loss`` (``data=digits_noisy optimizer.lr=0.3 plateau=val_loss``), crashed and resumed from each kind of
checkpoint the project writes, continue exactly as the uninterrupted run: the same batches in the same order, the
same LR, weights and loss at every step, the same validation metrics (read back from TensorBoard's event files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import read_scalars

from lrsched_pl.run import train

EPOCHS = 4  # 23 batches of 64 per epoch: 92 steps
RUN = [
    "data=digits_noisy", "optimizer.lr=0.3", "plateau=val_loss", "plateau.patience=0", "model.dropout=0.3",
    f"trainer.max_epochs={EPOCHS}", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    "callbacks.model_checkpoint.every_n_train_steps=10", "callbacks.model_checkpoint.save_top_k=-1",
    "callbacks.model_checkpoint.filename='{step}'",
]  # fmt: skip


def digest(*tensors: torch.Tensor) -> str:
    sha = hashlib.sha256()
    for t in tensors:
        sha.update(t.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


class StepLog(pl.Callback):
    """Appends, for every optimizer step, a JSON line: the step, its LRs, the batch, the loss and the weights after
    it; and for every validation the plateau's state."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        lrs = [g["lr"] for opt in trainer.optimizers for g in opt.param_groups]
        weights = digest(*pl_module.state_dict().values())
        self._write({"step": trainer.global_step, "lr": lrs, "batch": digest(*batch),
                     "loss": float(outputs["loss"]), "weights": weights})  # fmt: skip

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            plateau = trainer.callbacks[0].plateau.state_dict()  # callbacks.lr_schedule comes first
            self._write({"validation": trainer.global_step, "plateau": plateau,
                         "val_loss": float(trainer.callback_metrics["val/loss"])})  # fmt: skip


class Crash(pl.Callback):
    """Raises before optimizer step ``step`` (``where="batch"``: after the batch was fetched) or at the end of the
    validation after ``step`` steps (``where="validation"``, before ModelCheckpoint saves)."""

    def __init__(self, step: int, where: str = "batch") -> None:
        self.step, self.where = step, where

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.where == "batch" and trainer.global_step == self.step:
            raise RuntimeError(f"crash before step {self.step}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.where == "validation" and trainer.global_step == self.step and not trainer.sanity_checking:
            raise RuntimeError(f"crash after the validation at step {self.step}")


def read_log(path: Path) -> tuple[dict[int, dict], dict[int, dict]]:
    steps, validations = {}, {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "step" in record:
            steps[record["step"]] = record
        else:
            validations[record["validation"]] = record
    return steps, validations


def run(compose, out: Path, *overrides: str) -> None:
    log = f"+callbacks.step_log={{_target_: test_exact_resume.StepLog, path: '{out}.jsonl'}}"
    train(compose(*RUN, log, *overrides, output_dir=out))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict, dict]:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from conftest import ROOT
    out = tmp_path_factory.mktemp("exact") / "full"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        run(lambda *o, output_dir: hydra_compose("train", overrides=[f"output_dir={output_dir}", *o]), out)
    steps, validations = read_log(Path(f"{out}.jsonl"))
    assert sorted(steps) == list(range(1, 23 * EPOCHS + 1)) and len(validations) == EPOCHS
    return out, steps, validations


CASES = {
    # a crash mid-epoch, resumed from last.ckpt written by every_n_train_steps=10 (step 30, in epoch 1)
    "mid_epoch": (["+callbacks.crash={_target_: test_exact_resume.Crash, step: 37}"], "last.ckpt", 30),
    # the same crash with save_on_exception: the checkpoint holds the batch in flight, fetched but not trained on
    "on_exception": (["+callbacks.crash={_target_: test_exact_resume.Crash, step: 37}",
                      "callbacks.model_checkpoint.save_on_exception=true"], "last.ckpt", 37),
    # the checkpoint written at the end of epoch 1's validation, after its plateau decision
    "epoch_end": (["+callbacks.crash={_target_: test_exact_resume.Crash, step: 50}"], "epoch=1-step=46.ckpt", 46),
}  # fmt: skip


@pytest.mark.parametrize("case", [c if c != "epoch_end" else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_a_crashed_run_resumes_exactly_as_the_uninterrupted_one(compose, tmp_path: Path, uninterrupted, case) -> None:
    full_dir, full_steps, full_validations = uninterrupted
    overrides, name, start = CASES[case]
    crashed = tmp_path / "crashed"
    extra = [] if name.startswith("last") else ["callbacks.model_checkpoint.filename='{epoch}-{step}'",
                                                "callbacks.model_checkpoint.every_n_train_steps=null"]  # fmt: skip
    with pytest.raises(RuntimeError, match="crash"):
        run(compose, crashed, *overrides, *extra)
    ckpt = crashed / "checkpoints" / name
    assert torch.load(ckpt, weights_only=True)["global_step"] == start
    resumed = tmp_path / "resumed"
    run(compose, resumed, f"ckpt_path='{ckpt}'")
    steps, validations = read_log(Path(f"{resumed}.jsonl"))
    assert sorted(steps) == list(range(start + 1, 23 * EPOCHS + 1))
    for k, record in steps.items():  # batch, LR, loss and weights after the step, bit for bit
        assert record == full_steps[k], (k, record, full_steps[k])
    assert validations == {k: v for k, v in full_validations.items() if k > start}
    scales = {k: v["plateau"]["scale"] for k, v in full_validations.items()}
    assert scales[92] < scales[46] == 1.0, scales  # the plateau on the real val/loss acted, after every resume point
    for tag in ("lr-SGD", "val/loss", "val/acc", "train/loss"):  # TensorBoard's events agree
        want = [(s, v) for s, v in read_scalars(full_dir, tag) if s >= start]
        got = [(s, v) for s, v in read_scalars(resumed, tag) if s >= start]
        assert got == want, tag


def check_continuation(full: tuple[Path, dict, dict], resumed: Path, start: int) -> None:
    _, full_steps, full_validations = full
    steps, validations = read_log(Path(f"{resumed}.jsonl"))
    assert sorted(steps) == list(range(start + 1, 23 * EPOCHS + 1))
    assert all(record == full_steps[k] for k, record in steps.items()), start
    assert validations == {k: v for k, v in full_validations.items() if k > start}, start


@pytest.mark.slow
def test_every_mid_epoch_checkpoint_of_a_run_resumes_exactly(compose, tmp_path: Path, uninterrupted) -> None:
    """The uninterrupted run's own checkpoints at steps 10, 30, 50, 70 and 90 (mid-epoch, in each of the 4 epochs),
    each resumed to the end."""
    checkpoints = sorted((uninterrupted[0] / "checkpoints").glob("step=*.ckpt"), key=lambda p: int(p.stem[5:]))
    assert [int(p.stem[5:]) for p in checkpoints] == list(range(10, 91, 10))
    for ckpt in checkpoints[::2]:
        resumed = tmp_path / f"from_{ckpt.stem[5:]}"
        run(compose, resumed, f"ckpt_path='{ckpt}'", "callbacks.model_checkpoint.every_n_train_steps=null")
        check_continuation(uninterrupted, resumed, int(ckpt.stem[5:]))


@pytest.mark.parametrize("shuffled", [True, False])
def test_the_loader_resumes_an_epoch_at_its_position_and_starts_the_next_one_afresh(shuffled: bool) -> None:
    """With the EpochSampler the position is skipped in the sampler; with another sampler (Lightning's
    DistributedSampler under DDP; a SequentialSampler here) the loader fast-forwards."""
    from torch.utils.data import TensorDataset

    from lrsched_pl.data import EpochSampler, ResumableLoader

    data = TensorDataset(torch.arange(50))

    def loader() -> ResumableLoader:
        sampler = EpochSampler(data, seed=7) if shuffled else None
        return ResumableLoader(data, batch_size=8, sampler=sampler, generator=torch.Generator())

    def epoch(dl: ResumableLoader, e: int) -> list[list[int]]:
        if shuffled:
            dl.sampler.set_epoch(e)
        return [batch[0].tolist() for batch in dl]

    first = loader()
    whole = epoch(first, 1)
    if shuffled:
        assert whole != epoch(loader(), 2)  # another epoch, another order
    partial = iter(first)
    if shuffled:
        first.sampler.set_epoch(1)
    seen = [next(partial)[0].tolist() for _ in range(3)]
    state = first.state_dict()
    assert seen == whole[:3] and state["batches"] == 3 and state["epoch"] == (1 if shuffled else None)
    resumed = loader()
    resumed.load_state_dict(state)
    assert epoch(resumed, 1) == whole[3:]  # the rest of the epoch, in the same order
    assert epoch(resumed, 1) == whole  # then whole epochs again
    if shuffled:  # a new epoch ignores a position in an old one
        later = loader()
        later.load_state_dict(state)
        assert epoch(later, 2) == epoch(loader(), 2)
