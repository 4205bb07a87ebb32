"""End to end: Hydra-composed runs of the default task, read back from their TensorBoard event files."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, f32_equal, read_scalars
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch.optim import lr_scheduler

from lrsched_pl.run import train

SMALL = ["trainer.max_epochs=3", "trainer.limit_train_batches=4", "trainer.enable_progress_bar=false"]
STEPS = 12  # 3 epochs x 4 batches


def torch_reference(factory, steps: int, per_epoch: int | None = None, lr: float = 0.1) -> list[float]:
    """LRs a torch scheduler gives at each optimizer step (stepped per step, or every `per_epoch` steps)."""
    opt = torch.optim.SGD([torch.zeros(1)], lr=lr)
    sched = factory(opt)
    out = []
    for k in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if per_epoch is None or (k + 1) % per_epoch == 0:
            sched.step()
    return out


REFERENCES = {
    "constant": lambda: [0.1] * STEPS,
    "step": lambda: torch_reference(lambda o: lr_scheduler.StepLR(o, 1, 0.5), STEPS, per_epoch=4),
    "multistep": lambda: torch_reference(lambda o: lr_scheduler.MultiStepLR(o, [1, 2], 0.1), STEPS, per_epoch=4),
    "exponential": lambda: torch_reference(lambda o: lr_scheduler.ExponentialLR(o, 0.9), STEPS, per_epoch=4),
    "time_based": lambda: [0.1 / (1 + 0.01 * k) for k in range(STEPS)],
    "cosine": lambda: torch_reference(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=STEPS), STEPS),
    "plateau": lambda: [0.1] * STEPS,  # patience 2 over 3 validations: no reduction yet
}
EXTRA = {"step": ["schedule.step_size=1"], "multistep": ["schedule.milestones=[1,2]"]}


@pytest.mark.parametrize("option", sorted(REFERENCES))
def test_each_option_trains_and_tensorboard_shows_the_reference_lr_at_every_step(
    compose, tmp_path: Path, option: str
) -> None:
    cfg = compose(f"schedule={option}", *EXTRA.get(option, []), *SMALL)
    objective = train(cfg)
    logged = read_scalars(tmp_path, "lr-SGD")
    want = REFERENCES[option]()
    assert [s for s, _ in logged] == list(range(STEPS))
    for step, value in logged:
        assert f32_equal(value, want[step]), (step, value, want[step])
    val_loss = read_scalars(tmp_path, "val/loss")
    assert len(val_loss) == 3 and len(read_scalars(tmp_path, "val/acc")) == 3
    assert objective == pytest.approx(val_loss[-1][1], rel=1e-6)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert not (tmp_path / "lightning_logs").exists() and not list(tmp_path.glob("version_*"))


def read_hparams(logdir: Path) -> tuple[set[str], set[str]]:
    """The hparam names and metric tags of the HPARAMS entry written into ``logdir``."""
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    metrics = {m.name.tag for m in experiment.metric_infos}
    return set(session.hparams), metrics


def test_hparams_entry_has_the_same_keys_and_the_validation_metrics(compose, tmp_path: Path) -> None:
    seen = []
    for option in ("step", "cosine"):
        out = tmp_path / option
        train(compose(f"schedule={option}", "trainer.max_epochs=1", "trainer.limit_train_batches=2", output_dir=out))
        seen.append(read_hparams(out))
    assert seen[0] == seen[1]
    assert seen[0] == ({"schedule", "schedule_params", "optimizer", "lr", "seed"}, {"val/loss", "val/acc"})
    # no stray scalar at step 0 from the hparams metrics: val/loss appears only once per validation
    assert [s for s, _ in read_scalars(tmp_path / "cosine", "val/loss")] == [1]


def test_resume_with_ckpt_path_continues_the_lr_curve(compose, tmp_path: Path) -> None:
    """Train 4 epochs; train 2, then resume from last.ckpt to 4: TensorBoard shows the same LR at every step."""
    common = ["schedule=time_based", "schedule.decay=0.2", "trainer.limit_train_batches=3", "trainer.enable_progress_bar=false"]
    train(compose(*common, "trainer.max_epochs=4", output_dir=tmp_path / "full"))
    train(compose(*common, "trainer.max_epochs=2", output_dir=tmp_path / "part"))
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    train(compose(*common, "trainer.max_epochs=4", f"ckpt_path={last}", output_dir=tmp_path / "part"))
    full = dict(read_scalars(tmp_path / "full", "lr-SGD"))
    resumed = dict(read_scalars(tmp_path / "part", "lr-SGD"))
    assert sorted(resumed) == sorted(full) == list(range(12))
    for step in range(12):
        assert resumed[step] == full[step] and f32_equal(full[step], 0.1 / (1 + 0.2 * step)), step


@pytest.mark.slow
def test_default_run_reaches_90_percent_validation_accuracy(compose, tmp_path: Path) -> None:
    train(compose("trainer.enable_progress_bar=false"))
    accuracy = read_scalars(tmp_path, "val/acc")
    assert len(accuracy) == 20
    assert accuracy[-1][1] >= 0.9


@pytest.mark.slow
def test_multirun_sweep_writes_one_named_tensorboard_run_per_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable, "train.py", "-m", "schedule=constant,step,time_based,cosine", "schedule.interval=step",
        f"hydra.sweep.dir={sweep}", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
        "trainer.enable_progress_bar=false",
        "hydra.job.config.override_dirname.exclude_keys=[trainer.max_epochs,trainer.limit_train_batches,"
        "trainer.enable_progress_bar,schedule.interval]",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.name for p in sweep.iterdir() if list(p.glob("events.out.tfevents.*")))  # not report/
    assert runs == ["schedule=constant", "schedule=cosine", "schedule=step", "schedule=time_based"]
    curves = {run: [v for _, v in read_scalars(sweep / run, "lr-SGD")] for run in runs}
    assert all(len(c) == 6 for c in curves.values())
    assert f32_equal(curves["schedule=constant"][-1], 0.1)
    assert f32_equal(curves["schedule=time_based"][-1], 0.1 / (1 + 0.01 * 5))
    assert f32_equal(curves["schedule=step"][-1], 0.1)  # step_size=10 steps: not reached in 6
    assert f32_equal(curves["schedule=cosine"][-1], 0.1 * (1 + math.cos(math.pi * 5 / 6)) / 2)
    for run in runs:
        assert len(read_scalars(sweep / run, "val/loss")) == 2


@pytest.mark.parametrize("option", sorted(__import__("lrsched_pl.config", fromlist=["OPTIONS"]).OPTIONS))
def test_every_option_trains_and_logs_the_previewed_lr(compose, tmp_path: Path, option: str) -> None:
    """`python train.py schedule=<option>` trains; TensorBoard's LR equals the preview (itself checked vs torch)."""
    from lrsched_pl.preview import curve

    overrides = [f"schedule={option}", "trainer.max_epochs=2", "trainer.limit_train_batches=4"]
    train(compose(*overrides, "trainer.enable_progress_bar=false"))
    logged = [v for _, v in read_scalars(tmp_path, "lr-SGD")]
    want = curve(overrides).lr
    assert len(logged) == len(want) == 8
    assert all(f32_equal(a, b) for a, b in zip(logged, want)), (logged, want)


def test_onecycle_cycles_momentum_and_the_monitor_logs_it(compose, tmp_path: Path) -> None:
    from lrsched_pl.preview import curve

    overrides = ["schedule=onecycle", "trainer.max_epochs=2", "trainer.limit_train_batches=5"]
    train(compose(*overrides, "callbacks.learning_rate_monitor.log_momentum=true", "trainer.enable_progress_bar=false"))
    logged = [v for _, v in read_scalars(tmp_path, "lr-SGD-momentum")]
    want = curve(overrides).momentum
    assert want is not None and len(logged) == len(want) == 10
    assert all(f32_equal(a, b) for a, b in zip(logged, want))
    assert max(want) == pytest.approx(0.95) and min(want) < 0.9
