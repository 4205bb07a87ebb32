"""Nothing lost on resume: every schedule option, both intervals, stopped at an epoch end, mid-epoch or by a crash,
resumed with ``ckpt_path``. Every later optimizer step uses exactly (==) the LR and momentum of the uninterrupted run,
the plateau sees every validation once (its state after each validation, and at the end, equals the uninterrupted
run's), and a checkpoint written under another config is reported, never half-restored in silence.

One gap is Lightning's, and it is reported: a checkpoint written in ``on_train_batch_end`` right before a validation
(``ModelCheckpoint(every_n_train_steps=...)`` on an epoch's last batch) resumes *without* that validation, so a
plateau misses it; the callback warns when it loads such a checkpoint.
"""

from __future__ import annotations

import copy
import math
import pickle
import random
import warnings
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import pytest
import torch
from conftest import TinyModule, make_trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lrsched_pl import CosineDecay, ReducePlateau, ScheduleCallback, StepDecay
from lrsched_pl.config import OPTIONS, schedule_callback
from lrsched_pl.schedules import Constant

N_BATCHES = 5
EPOCHS = 4

# Keys that make each option change the LR within a 4-epoch / 20-step run, for both intervals (fractions of the
# run). Options not listed (and any added later) run with their defaults.
SHORT_RUN = {
    "step": ["schedule.step_size=0.25dur"],
    "multistep": ["schedule.milestones=[0.25dur,0.5dur]", "schedule.gamma=0.5"],
    "cosine_restarts": ["schedule.period=0.5dur"],
    "inverse_sqrt": ["schedule.timescale=1"],
    "wsd": ["schedule.decay=0.5dur"],
    "plateau": ["schedule.monitor=val/metric", "schedule.patience=0"],
}
# Beyond the options themselves: a warmup in front, and a plateau on top of a decaying schedule.
EXTRA = {
    "cosine+warmup": ["schedule=cosine", "schedule.warmup=0.25dur"],
    "step+plateau": [
        "schedule=step", "schedule.step_size=0.25dur", "plateau=val_loss", "plateau.monitor=val/metric",
        "plateau.patience=0",
    ],
    # LR + weight decay + momentum schedules, and a param group (pg2) on an LR schedule of its own
    "values+groups": [
        "schedule=step", "schedule.step_size=0.25dur", "wd_schedule=cosine", "wd_schedule.groups=[pg1,pg2]", "+group_schedules.pg2.lr.warmup=2",
        "wd_schedule.start=0.01", "wd_schedule.min_lr=0.05", "momentum_schedule=step", "momentum_schedule.start=0.8",
        "momentum_schedule.step_size=0.25dur", "+group_schedules.pg2.lr.name=linear", "plateau=val_loss",
        "plateau.monitor=val/metric", "plateau.patience=0",
    ],
}  # fmt: skip
CASES = {**{option: [f"schedule={option}", *SHORT_RUN.get(option, [])] for option in OPTIONS}, **EXTRA}
PLATEAU_CASES = ["plateau", "step+plateau", "values+groups"]

# Validation schedules: Trainer arguments and batches per epoch.
VALIDATION = {
    "every_epoch": ({}, N_BATCHES),
    "every_2nd_epoch": ({"check_val_every_n_epoch": 2}, N_BATCHES),
    "twice_per_epoch": ({"val_check_interval": 0.5}, 4),
    "accumulate_2": ({"accumulate_grad_batches": 2}, N_BATCHES),
}

Make = Callable[[], ScheduleCallback]


def metric_at(step: int) -> float:
    """The scripted ``val/metric`` of a validation that runs after optimizer step ``step``.

    A function of the global step, which the checkpoint restores, so a resumed run sees what the uninterrupted one
    saw, whatever the validation schedule. The values jump around (``1 + (5 * step mod 7) / 7``): with
    ``patience=0`` about every other validation is a reduction, so one validation lost or counted twice changes
    the plateau's state.
    """
    return 1.0 + (5 * step % 7) / 7


class ScriptedModule(TinyModule):
    """TinyModule logging ``val/metric = metric_at(global_step)`` at the end of each real validation."""

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.log("val/metric", metric_at(self.trainer.global_step))


class Recorder(pl.Callback):
    """Per optimizer step, each group's LR and momentum; per validation, the plateau's state after it."""

    def __init__(self, schedule: ScheduleCallback) -> None:
        self.schedule = schedule
        self.steps: dict[int, list[tuple[Any, ...]]] = {}
        self.validations: dict[int, Any] = {}

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        groups = optimizer.param_groups
        self.steps[trainer.global_step] = [
            (g["lr"], g.get("momentum"), g.get("betas"), g.get("weight_decay")) for g in groups
        ]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validations[trainer.global_step] = copy.deepcopy(self.schedule.state_dict()["plateau"])


class Interrupted(Exception):
    """A simulated crash; ``fit`` attaches the crashed run's :class:`Recorder` as ``recorder``."""

    recorder: Recorder


class Crash(pl.Callback):
    """Raises when ``global_step == step``: before that optimizer step (``where="train"``), or at the end of the
    validation that runs after ``step`` steps (``"validation"``), before ModelCheckpoint (always last) can save."""

    def __init__(self, step: int, where: str) -> None:
        self.step, self.where = step, where

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.where == "train" and trainer.global_step == self.step:
            raise Interrupted(f"crash before step {self.step}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.where == "validation" and trainer.global_step == self.step and not trainer.sanity_checking:
            raise Interrupted(f"crash in the validation after step {self.step}")


def factory(compose, overrides: list[str], interval: str) -> Make:
    """``make() -> ScheduleCallback``: a fresh callback built from the composed Hydra config (composed once)."""
    values = [f"{key}.interval={interval}" for key in ("wd_schedule", "momentum_schedule") if any(
        o.startswith(f"{key}=") for o in overrides)]  # fmt: skip
    cfg = compose(*overrides, f"schedule.interval={interval}", *values)
    return lambda: schedule_callback(
        cfg.schedule, cfg.get("plateau"), cfg.get("wd_schedule"), cfg.get("momentum_schedule"), cfg.get("group_schedules")
    )


def fit(
    tmp_path: Path,
    callback: ScheduleCallback,
    extra: list[pl.Callback] = (),
    ckpt_path: Path | None = None,
    n_batches: int = N_BATCHES,
    **kwargs: Any,
) -> Recorder:
    recorder = Recorder(callback)
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in extra)
    options = dict(max_epochs=EPOCHS, logger=False, enable_checkpointing=checkpointing, limit_val_batches=1)
    trainer = make_trainer(tmp_path, [callback, recorder, *extra], default_root_dir=tmp_path, **{**options, **kwargs})
    with warnings.catch_warnings():
        # a resumed run lacks the ModelCheckpoints that wrote the checkpoint, and the data order is not resumable
        warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided.*")
        warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        try:
            trainer.fit(ScriptedModule(lrs=(0.1, 0.02), n_batches=n_batches), ckpt_path=ckpt_path)
        except Interrupted as crash:
            crash.recorder = recorder
            raise
    return recorder


def checkpointers(root: Path) -> list[ModelCheckpoint]:
    """A checkpoint after every optimizer step (in ``on_train_batch_end``) and at the end of every validation."""
    return [
        ModelCheckpoint(dirpath=root / "steps", filename="{step}", every_n_train_steps=1, save_top_k=-1),
        ModelCheckpoint(dirpath=root / "epochs", filename="{epoch}-{step}", every_n_epochs=1, save_top_k=-1),
    ]


def ckpt_step(path: Path) -> int:
    return int(path.stem.rsplit("step=", 1)[1])


def schedule_messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "ScheduleCallback" in str(w.message)]


class Full:
    """The uninterrupted run, writing a checkpoint after every step and at the end of every validation."""

    def __init__(self, tmp_path: Path, make: Make, n_batches: int = N_BATCHES, **kwargs: Any) -> None:
        self.callback = make()
        self.kwargs = dict(n_batches=n_batches, **kwargs)
        self.ckpt = tmp_path / "ckpt"
        self.record = fit(tmp_path / "full", self.callback, checkpointers(self.ckpt), **self.kwargs)
        self.final = self.callback.state_dict()
        self.total = len(self.record.steps)
        assert sorted(self.record.steps) == list(range(self.total))

    def checkpoints(self) -> list[Path]:
        return sorted(self.ckpt.glob("*/*.ckpt"), key=lambda p: (ckpt_step(p), p.parent.name == "epochs"))

    def resume(self, tmp_path: Path, make: Make, ckpt: Path) -> bool:
        """Resumes from ``ckpt`` and checks it; True if the continuation was exact.

        Exact: the same LR and momentum (==) at every later step, the same plateau state after every later
        validation, no validation missing or repeated, the same final state, and no ScheduleCallback warning.
        The exception: a checkpoint written right before a validation that Lightning then skips; the plateau
        misses exactly that validation, and the callback must have said so.
        """
        callback = make()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resumed = fit(tmp_path / f"resume-{ckpt.parent.name}-{ckpt.stem}", callback, ckpt_path=ckpt, **self.kwargs)
        messages = schedule_messages(caught)
        start, full = ckpt_step(ckpt), self.record
        later = {k: v for k, v in full.validations.items() if k > start}
        assert sorted(resumed.steps) == list(range(start, self.total))
        if start in full.validations and ckpt.parent.name == "steps" and callback.plateau is not None:
            assert len(messages) == 1 and "does not run that validation" in messages[0], messages
            assert sorted(resumed.validations) == sorted(later)  # the one at `start` is the one missing
            return False
        for k in resumed.steps:
            assert resumed.steps[k] == full.steps[k], (ckpt.name, k, resumed.steps[k], full.steps[k])
        assert resumed.validations == later, ckpt.name
        final = callback.state_dict()
        assert (final["base_lrs"], final["plateau"]) == (self.final["base_lrs"], self.final["plateau"])
        assert messages == [], messages
        return True


# first step, mid-epoch points, epoch boundaries (validation end), the last step (after the final validation), and
# one written right before a validation (exact without a plateau; with one, the reported exception)
FAST_POINTS = ["steps/step=1", "steps/step=7", "steps/step=13", "epochs/epoch=0-step=5", "epochs/epoch=2-step=15",
               "epochs/epoch=3-step=20", "steps/step=10"]  # fmt: skip


@pytest.mark.parametrize("interval", ["step", "epoch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_is_exact_for_every_option(compose, tmp_path: Path, case: str, interval: str) -> None:
    make = factory(compose, CASES[case], interval)
    full = Full(tmp_path, make)
    assert full.total == 20 and sorted(full.record.validations) == [5, 10, 15, 20]
    exact = sum(full.resume(tmp_path, make, full.ckpt / f"{point}.ckpt") for point in FAST_POINTS)
    assert exact == len(FAST_POINTS) - (full.callback.plateau is not None)
    if full.callback.plateau is not None:
        assert full.final["plateau"]["scale"] <= 0.25  # at least two reductions: the plateau had work to do


@pytest.mark.parametrize("schedule", ["every_2nd_epoch", "twice_per_epoch", "accumulate_2"])
def test_plateau_resume_across_validation_schedules(compose, tmp_path: Path, schedule: str) -> None:
    """Every checkpoint of a run validating every 2nd epoch / twice per epoch / with gradient accumulation."""
    kwargs, n_batches = VALIDATION[schedule]
    make = factory(compose, CASES["step+plateau"], "step")
    full = Full(tmp_path, make, n_batches=n_batches, **kwargs)
    checkpoints = full.checkpoints()
    exact = sum(full.resume(tmp_path, make, ckpt) for ckpt in checkpoints)
    pending = sum(p.parent.name == "steps" and ckpt_step(p) in full.record.validations for p in checkpoints)
    assert exact == len(checkpoints) - pending and exact >= 10
    assert full.final["plateau"]["scale"] <= 0.5


@pytest.mark.slow
@pytest.mark.parametrize("interval", ["step", "epoch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_from_every_checkpoint_of_every_option(compose, tmp_path: Path, case: str, interval: str) -> None:
    """All 24 checkpoints (20 after a step, 4 at a validation's end) of each option; plateau cases also under
    every validation schedule."""
    make = factory(compose, CASES[case], interval)
    schedules = VALIDATION if case in PLATEAU_CASES else {"every_epoch": VALIDATION["every_epoch"]}
    for name, (kwargs, n_batches) in schedules.items():
        full = Full(tmp_path / name, make, n_batches=n_batches, **kwargs)
        checkpoints = full.checkpoints()
        exact = sum(full.resume(tmp_path / name, make, ckpt) for ckpt in checkpoints)
        pending = sum(p.parent.name == "steps" and ckpt_step(p) in full.record.validations for p in checkpoints)
        assert exact == len(checkpoints) - (pending if full.callback.plateau is not None else 0)
        assert len(checkpoints) == 24 or name != "every_epoch"


# ---- faults: crashes at random steps, resumed from the last checkpoint ---------------------------------------------


def fault_checkpointers(root: Path) -> list[ModelCheckpoint]:
    """Every 7 optimizer steps (never right before a validation here) and at the end of every validation."""
    return [
        ModelCheckpoint(dirpath=root, filename="{step}", every_n_train_steps=7, save_top_k=-1),
        ModelCheckpoint(dirpath=root, filename="{epoch}-{step}", every_n_epochs=1, save_top_k=-1),
    ]


def last_checkpoint(root: Path) -> Path | None:
    """The checkpoint written last: the highest step; at equal steps the validation-end one (written after)."""
    files = sorted(root.glob("*.ckpt"), key=lambda p: (ckpt_step(p), p.stem.startswith("epoch")))
    return files[-1] if files else None


def run_with_crashes(
    tmp_path: Path, make: Make, crashes: list[tuple[int, str]]
) -> tuple[list[Recorder], dict, int]:
    """Fits, crashing at each ``(step, where)`` in turn and resuming from the last checkpoint, to the end.

    Returns each attempt's record, the final state, and the number of crashes that happened.
    """
    attempts: list[Recorder] = []
    survived = 0
    for attempt in range(len(crashes) + 1):
        ckpt = last_checkpoint(tmp_path / "ckpt")
        start = 0 if ckpt is None else ckpt_step(ckpt)
        callback = make()
        crash = [Crash(*crashes[attempt])] if attempt < len(crashes) else []
        try:
            recorder = fit(tmp_path / f"attempt{attempt}", callback, [*crash, *fault_checkpointers(tmp_path / "ckpt")],
                           ckpt_path=ckpt)  # fmt: skip
        except Interrupted as err:
            survived += 1
            recorder = err.recorder
        # nothing before the checkpoint is redone: no validation counted twice
        assert all(k >= start for k in recorder.steps) and all(k > start for k in recorder.validations)
        attempts.append(recorder)
    return attempts, callback.state_dict(), survived


def crash_plan(seed: int, total: int = EPOCHS * N_BATCHES) -> tuple[str, str, list[tuple[int, str]]]:
    """A seeded case, interval and one or two crashes (before a step, or at a validation's end)."""
    rng = random.Random(seed)
    case = rng.choice(sorted(CASES))
    interval = rng.choice(["step", "epoch"])
    events = [(k, "train") for k in range(1, total)]
    events += [(k, "validation") for k in range(N_BATCHES, total + 1, N_BATCHES)]
    # in time order: the validation after step k-1 (global_step k) runs before the batch of step k
    crashes = sorted(rng.sample(events, rng.choice([1, 2])), key=lambda e: (e[0], e[1] == "train"))
    return case, interval, crashes


def check_faults(compose, tmp_path: Path, case: str, interval: str, crashes: list[tuple[int, str]]) -> None:
    make = factory(compose, CASES[case], interval)
    callback = make()
    full = fit(tmp_path / "full", callback)
    attempts, final, survived = run_with_crashes(tmp_path, make, crashes)
    assert survived == len(crashes)
    for attempt in attempts:  # every step's LR and momentum (==), and the plateau after every validation, in
        assert attempt.steps.items() <= full.steps.items()  # every attempt, the crashed ones included
        assert all(attempt.validations[k] == full.validations[k] for k in attempt.validations)
    assert set().union(*(a.steps for a in attempts)) == set(full.steps)
    assert set().union(*(a.validations for a in attempts)) == set(full.validations)
    want = callback.state_dict()
    assert (final["base_lrs"], final["plateau"]) == (want["base_lrs"], want["plateau"])


@pytest.mark.parametrize(
    "case,interval,crashes",
    [
        ("plateau", "epoch", [(8, "train"), (15, "validation")]),  # the second crash: after the plateau stepped
        ("step+plateau", "step", [(11, "train")]),
        ("onecycle", "step", [(3, "train"), (17, "train")]),  # momentum cycles too
        *[crash_plan(seed) for seed in range(3)],
    ],
)
def test_crashes_then_resume_from_the_last_checkpoint(compose, tmp_path: Path, case, interval, crashes) -> None:
    check_faults(compose, tmp_path, case, interval, crashes)


@pytest.mark.slow
def test_random_crashes_over_many_seeds(compose, tmp_path: Path) -> None:
    plans = [crash_plan(seed) for seed in range(3, 33)]
    for seed, (case, interval, crashes) in enumerate(plans, start=3):
        check_faults(compose, tmp_path / f"seed{seed}", case, interval, crashes)
    assert sum(len(c) for _, _, c in plans) >= 40


# ---- the state and checkpoints of another config -------------------------------------------------------------------


def plateau_callback(**kwargs: Any) -> ScheduleCallback:
    plateau = ReducePlateau(**{"monitor": "val/metric", "patience": 0, **kwargs})
    return ScheduleCallback(StepDecay(step_size=2, gamma=0.5), interval="epoch", plateau=plateau)


def test_state_dict_survives_torch_save_pickle_deepcopy_and_weights_only_checkpoints(tmp_path: Path) -> None:
    callback = plateau_callback()
    fit(tmp_path, callback, [ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)])
    state = callback.state_dict()
    assert state["base_lrs"] == [[0.1, 0.02]]
    assert state["plateau"]["scale"] < 1 and math.isfinite(state["plateau"]["best"])
    torch.save(state, tmp_path / "state.pt")
    copies = [torch.load(tmp_path / "state.pt", weights_only=True), pickle.loads(pickle.dumps(state))]
    copies.append(copy.deepcopy(state))
    assert all(c == state for c in copies)
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)  # the whole Lightning checkpoint
    assert checkpoint["callbacks"][callback.state_key] == state
    for clone in (pickle.loads(pickle.dumps(callback)), copy.deepcopy(callback)):  # the callback itself, after fit
        assert clone.state_dict() == state
    fresh = plateau_callback()
    fresh.load_state_dict(copies[0])
    assert fresh.state_dict() == state


def resume_warnings(
    tmp_path: Path, callback: ScheduleCallback, ckpt: Path, **kwargs: Any
) -> tuple[Recorder, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = fit(tmp_path, callback, ckpt_path=ckpt, **kwargs)
    return record, schedule_messages(caught)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Recorder, Path]:
    """A run of ``plateau_callback()`` with a checkpoint at the end of every validation."""
    ckpt = tmp_path / "ckpt"
    every_epoch = ModelCheckpoint(dirpath=ckpt, filename="{epoch}", save_top_k=-1)
    record = fit(tmp_path / "written", plateau_callback(), [every_epoch])
    return record, ckpt


def test_other_schedule_parameters_are_reported_and_the_new_schedule_continues(tmp_path: Path, written) -> None:
    _, ckpt = written
    plateau = ReducePlateau("val/metric", patience=0)
    callback = ScheduleCallback(StepDecay(step_size=2, gamma=0.1), interval="epoch", plateau=plateau)
    record, messages = resume_warnings(tmp_path, callback, ckpt / "epoch=1.ckpt")
    assert len(messages) == 1 and repr(StepDecay(step_size=2, gamma=0.5)) in messages[0] and "gamma=0.1" in messages[0]
    scale = torch.load(ckpt / "epoch=1.ckpt", weights_only=True)["callbacks"][callback.state_key]["plateau"]["scale"]
    assert record.steps[10][0][0] == 0.1 * 0.1 * scale  # the new schedule at t = 2, the restored plateau on top


def test_another_schedule_class_is_reported_with_what_happens(tmp_path: Path, written) -> None:
    _, ckpt = written
    callback = ScheduleCallback(CosineDecay(), interval="epoch")
    record, messages = resume_warnings(tmp_path, callback, ckpt / "epoch=1.ckpt")
    assert len(messages) == 1, messages
    if "holds no state of this callback" in messages[0]:  # the schedule class is part of the state_key today
        saved = torch.load(ckpt / "epoch=1.ckpt", weights_only=True)["optimizer_states"][0]["param_groups"]
        assert callback.base_lrs == [[g["lr"] for g in saved]] and "t = 2" in messages[0]  # the LRs in use then
    else:
        assert "was written with schedule StepDecay" in messages[0] and callback.base_lrs == [[0.1, 0.02]]
    assert str(callback.base_lrs) in messages[0]
    assert record.steps[10][0][0] == CosineDecay(total=EPOCHS)(2, callback.base_lrs[0][0])


def test_a_callback_added_only_on_resume_warns_and_continues_from_the_restored_step(tmp_path: Path) -> None:
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    options = dict(max_epochs=2, logger=False, enable_checkpointing=True, limit_val_batches=1)
    trainer = make_trainer(tmp_path / "plain", [ckpt], **options)
    trainer.fit(ScriptedModule(lrs=(0.1, 0.02), n_batches=N_BATCHES))  # no ScheduleCallback: a constant LR
    callback = ScheduleCallback(StepDecay(step_size=1, gamma=0.5), interval="epoch")
    record, messages = resume_warnings(tmp_path / "resumed", callback, tmp_path / "ckpt" / "epoch=1.ckpt")
    assert len(messages) == 1 and "holds no state of this callback" in messages[0] and "t = 2" in messages[0]
    assert callback.base_lrs == [[0.1, 0.02]]  # the optimizer's LRs as restored
    assert record.steps[10][0][0] == 0.1 * 0.5**2 and record.steps[19][1][0] == 0.02 * 0.5**3


def test_a_changed_plateau_monitor_keeps_only_the_reductions(tmp_path: Path, written) -> None:
    _, ckpt = written
    saved = torch.load(ckpt / "epoch=2.ckpt", weights_only=True)["callbacks"][plateau_callback().state_key]["plateau"]
    callback = plateau_callback(monitor="val/loss")
    record, messages = resume_warnings(tmp_path, callback, ckpt / "epoch=2.ckpt")
    assert len(messages) == 1 and "`monitor` 'val/metric' -> 'val/loss'" in messages[0]
    assert "only its reductions" in messages[0]
    assert saved["scale"] < 1
    assert record.steps[15][0][0] == 0.1 * 0.5 * saved["scale"]  # the reductions kept; then val/loss is watched


def test_other_plateau_settings_continue_from_the_restored_state(tmp_path: Path, written) -> None:
    full, ckpt = written
    callback = plateau_callback(patience=5)  # no reduction can happen in the 1 epoch left
    record, messages = resume_warnings(tmp_path, callback, ckpt / "epoch=2.ckpt")
    assert len(messages) == 1 and "`patience` 0 -> 5" in messages[0] and "is restored" in messages[0]
    assert record.steps[15] == full.steps[15] and callback.plateau.num_bad <= 1


def test_a_plateau_dropped_or_added_on_resume_is_reported(tmp_path: Path, written) -> None:
    full, ckpt = written
    dropped = ScheduleCallback(StepDecay(step_size=2, gamma=0.5), interval="epoch")
    record, messages = resume_warnings(tmp_path / "dropped", dropped, ckpt / "epoch=2.ckpt")
    assert len(messages) == 1 and "factor of 0.5" in messages[0] and "that reduction is dropped" in messages[0]
    assert record.steps[15][0][0] == 0.1 * 0.5 and full.steps[15][0][0] == 0.1 * 0.5 * 0.5
    added = plateau_callback()
    state = torch.load(ckpt / "epoch=2.ckpt", weights_only=True)["callbacks"][added.state_key]
    with pytest.warns(UserWarning, match="no plateau state; the plateau on `val/metric` starts afresh"):
        added.load_state_dict({**state, "plateau": None, "plateau_settings": None})
    assert added.plateau.scale == 1.0 and added.plateau.best == math.inf


def test_a_changed_run_length_is_reported_with_the_jump(tmp_path: Path) -> None:
    """cosine with `total: null` spans the whole run: resuming with more epochs stretches it."""
    ckpt = tmp_path / "ckpt"
    every_epoch = ModelCheckpoint(dirpath=ckpt, filename="{epoch}", save_top_k=-1)
    fit(tmp_path / "short", ScheduleCallback(CosineDecay(), "epoch"), [every_epoch])
    callback = ScheduleCallback(CosineDecay(), "epoch")
    record, messages = resume_warnings(tmp_path / "long", callback, ckpt / "epoch=1.ckpt", max_epochs=8)
    assert len(messages) == 1 and repr(CosineDecay(total=8)) in messages[0] and "total=4" in messages[0]
    assert record.steps[10][0][0] == CosineDecay(total=8)(2, 0.1)


def test_a_checkpoint_right_before_a_validation_loses_exactly_that_one_and_says_so(tmp_path: Path) -> None:
    """ModelCheckpoint(every_n_train_steps=5) saves on each epoch's last batch, before its validation; Lightning
    resumes past that validation. The resumed plateau equals one fed every validation but that one."""
    metrics_seen = [float(torch.tensor(metric_at(s))) for s in (5, 10, 15, 20)]  # self.log stores float32

    def callback() -> ScheduleCallback:
        return ScheduleCallback(Constant(), plateau=ReducePlateau("val/metric", patience=0))

    ckpt = tmp_path / "ckpt"
    every_5_steps = ModelCheckpoint(dirpath=ckpt, filename="{step}", every_n_train_steps=5, save_top_k=-1)
    full = fit(tmp_path / "full", callback(), [every_5_steps])
    assert torch.load(ckpt / "step=10.ckpt", weights_only=True)["callbacks"][callback().state_key]["validation_pending"]
    resumed_callback = callback()
    resumed, messages = resume_warnings(tmp_path / "resumed", resumed_callback, ckpt / "step=10.ckpt")
    assert len(messages) == 1 and "misses one observation" in messages[0] and "`val/metric`" in messages[0]
    assert sorted(resumed.validations) == [15, 20]  # the validation after step 10 never ran
    replay = ReducePlateau("val/metric", patience=0)
    for m in metrics_seen[:1] + metrics_seen[2:]:
        replay.step(m, [0.1])
    assert resumed_callback.plateau.state_dict() == replay.state_dict() != full.validations[20]
