"""ScheduleCallback in a real Trainer: the LR each optimizer step uses, what TensorBoard shows, plateau, resume."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch
from conftest import LRRecorder, TinyModule, close, f32_equal, make_trainer, read_scalars
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from torch.optim import lr_scheduler

from lrsched_pl import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    MultiStepDecay,
    ReducePlateau,
    ScheduleCallback,
    StepDecay,
    TimeBasedDecay,
)

N_BATCHES = 5
EPOCHS = 4
STEPS = N_BATCHES * EPOCHS

# (our schedule, torch scheduler factory) pairs: the torch one, stepped by Lightning itself, is the reference.
TORCH_PAIRS = {
    "step": (StepDecay(step_size=3, gamma=0.5), lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    "multistep": (
        MultiStepDecay(milestones=(2, 3, 7), gamma=0.3),
        lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 3, 7], gamma=0.3),
    ),
    "exponential": (ExponentialDecay(gamma=0.8), lambda o: lr_scheduler.ExponentialLR(o, gamma=0.8)),
    "cosine": (
        CosineDecay(total=STEPS, min_lr=0.001),
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=0.001),
    ),
}


def fit_recording(tmp_path: Path, callbacks: list, module: TinyModule | None = None, **kwargs) -> LRRecorder:
    recorder = LRRecorder()
    trainer = make_trainer(tmp_path, [*callbacks, recorder], **{"max_epochs": EPOCHS, **kwargs})
    trainer.fit(module or TinyModule(lrs=(0.1, 0.03), n_batches=N_BATCHES))
    return recorder


@pytest.mark.parametrize("name", sorted(TORCH_PAIRS))
@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_lr_each_step_equals_torch_scheduler_stepped_by_lightning(tmp_path: Path, name: str, interval: str) -> None:
    """Every optimizer step, both param groups: our callback == the torch scheduler in configure_optimizers."""
    ours, torch_factory = TORCH_PAIRS[name]
    if name == "cosine" and interval == "epoch":
        ours = CosineDecay(total=EPOCHS, min_lr=0.001)
        torch_factory = lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=EPOCHS, eta_min=0.001)  # noqa: E731
    got = fit_recording(tmp_path / "ours", [ScheduleCallback(ours, interval=interval)]).lrs
    reference_module = TinyModule(
        lrs=(0.1, 0.03),
        n_batches=N_BATCHES,
        scheduler=lambda o: {"scheduler": torch_factory(o), "interval": interval},
    )
    want = fit_recording(tmp_path / "torch", [], module=reference_module).lrs
    assert sorted(got) == list(range(STEPS))
    for k in range(STEPS):
        assert all(close(a, b) for a, b in zip(got[k], want[k])), (k, got[k], want[k])
    assert got[0] == [0.1, 0.03]
    assert got[STEPS - 1][0] < 0.1  # it decayed


@pytest.mark.parametrize(
    "schedule,formula",
    [
        (TimeBasedDecay(decay=0.1), lambda t: 1 / (1 + 0.1 * t)),
        (TimeBasedDecay(decay=0.5, decay_steps=3, staircase=True), lambda t: 1 / (1 + 0.5 * (t // 3))),
        (Constant(), lambda t: 1.0),
    ],
)
def test_time_based_and_constant_follow_the_keras_formula(tmp_path: Path, schedule, formula) -> None:
    got = fit_recording(tmp_path, [ScheduleCallback(schedule, interval="step")]).lrs
    for k in range(STEPS):
        assert close(got[k][0], 0.1 * formula(k)) and close(got[k][1], 0.03 * formula(k)), k


def test_cosine_default_total_is_the_whole_run(tmp_path: Path) -> None:
    got = fit_recording(tmp_path, [ScheduleCallback(CosineDecay(), interval="step")]).lrs
    ref = lr_scheduler.CosineAnnealingLR(torch.optim.SGD([torch.zeros(1)], lr=0.1), T_max=STEPS)
    for k in range(STEPS):
        assert close(got[k][0], ref.optimizer.param_groups[0]["lr"]), k
        ref.optimizer.step()
        ref.step()


@pytest.mark.parametrize("monitor_first", [True, False])
@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_tensorboard_shows_the_lr_each_step_used_in_either_callback_order(
    tmp_path: Path, monitor_first: bool, interval: str
) -> None:
    schedule = ScheduleCallback(StepDecay(step_size=2, gamma=0.5), interval=interval)
    monitor = LearningRateMonitor(logging_interval="step")
    recorder = LRRecorder()
    callbacks = [monitor, schedule, recorder] if monitor_first else [recorder, schedule, monitor]
    make_trainer(tmp_path, callbacks, max_epochs=EPOCHS).fit(TinyModule(lrs=(0.1,), n_batches=N_BATCHES))
    logged = read_scalars(tmp_path, "lr-SGD")
    assert [step for step, _ in logged] == list(range(STEPS))
    for step, value in logged:
        assert f32_equal(value, recorder.lrs[step][0]), (step, value, recorder.lrs[step])
    assert len({v for _, v in logged}) > 1


def test_gradient_accumulation_counts_optimizer_steps(tmp_path: Path) -> None:
    """With accumulate_grad_batches=3, t is the optimizer step, and TensorBoard logs that LR at that step."""
    recorder = LRRecorder()
    callbacks = [LearningRateMonitor(logging_interval="step"), ScheduleCallback(TimeBasedDecay(decay=0.5), "step"), recorder]
    trainer = make_trainer(tmp_path, callbacks, max_epochs=2, accumulate_grad_batches=3)
    trainer.fit(TinyModule(lrs=(0.1,), n_batches=6))
    assert sorted(recorder.lrs) == list(range(4))  # 2 epochs x 6 batches / 3
    for k, (lr,) in recorder.lrs.items():
        assert close(lr, 0.1 / (1 + 0.5 * k)), k
    for step, value in read_scalars(tmp_path, "lr-SGD"):
        assert f32_equal(value, recorder.lrs[step][0])


def torch_plateau_lrs(metrics: list[float], lr: float = 0.1, **kwargs) -> list[float]:
    """The LR torch's ReduceLROnPlateau gives after each metric."""
    opt = torch.optim.SGD([torch.zeros(1)], lr=lr)
    sched = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
    return out


PLATEAU_METRICS = [5.0, 4.0, 4.0, 4.1, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0]


def test_plateau_equals_torch_and_never_uses_the_sanity_check(tmp_path: Path) -> None:
    """A scripted metric logged in on_validation_epoch_end; a sanity value that would become `best` is ignored."""
    plateau = ReducePlateau(monitor="val/metric", factor=0.5, patience=1, cooldown=1)
    module = TinyModule(lrs=(0.1,), n_batches=3, metrics=PLATEAU_METRICS, sanity_metric=-1e9)
    recorder = fit_recording(
        tmp_path, [ScheduleCallback(plateau=plateau)], module=module, max_epochs=12, num_sanity_val_steps=1
    )
    want = torch_plateau_lrs(PLATEAU_METRICS, factor=0.5, patience=1, cooldown=1)
    for k, (lr,) in recorder.lrs.items():
        epoch = k // 3
        expected = 0.1 if epoch == 0 else want[epoch - 1]  # the decision after epoch e applies from epoch e+1
        assert close(lr, expected), (k, lr, expected)
    assert min(lr for (lr,) in recorder.lrs.values()) < 0.1


def test_plateau_with_check_val_every_n_epoch_steps_only_on_real_validations(tmp_path: Path) -> None:
    plateau = ReducePlateau(monitor="val/metric", factor=0.5, patience=0)
    module = TinyModule(lrs=(0.1,), n_batches=2, metrics=PLATEAU_METRICS)
    recorder = fit_recording(
        tmp_path, [ScheduleCallback(plateau=plateau)], module=module, max_epochs=8, check_val_every_n_epoch=2
    )
    want = torch_plateau_lrs(PLATEAU_METRICS[:4], factor=0.5, patience=0)
    for k, (lr,) in recorder.lrs.items():
        validations_done = (k // 2) // 2  # validation after epochs 1, 3, 5, 7
        expected = 0.1 if validations_done == 0 else want[validations_done - 1]
        assert close(lr, expected), (k, lr, expected)
    assert module.validations == 4


def test_plateau_with_val_check_interval_applies_from_the_next_optimizer_step(tmp_path: Path) -> None:
    plateau = ReducePlateau(monitor="val/metric", factor=0.5, patience=0)
    module = TinyModule(lrs=(0.1,), n_batches=4, metrics=PLATEAU_METRICS)
    recorder = fit_recording(
        tmp_path, [ScheduleCallback(plateau=plateau)], module=module, max_epochs=3, val_check_interval=0.5
    )
    want = torch_plateau_lrs(PLATEAU_METRICS[:6], factor=0.5, patience=0)
    for k, (lr,) in recorder.lrs.items():
        validations_done = k // 2  # validation after every 2nd batch
        expected = 0.1 if validations_done == 0 else want[validations_done - 1]
        assert close(lr, expected), (k, lr, expected)
    assert module.validations == 6


def test_plateau_on_a_missing_metric_names_it_and_lists_the_available_ones(tmp_path: Path) -> None:
    callback = ScheduleCallback(plateau=ReducePlateau(monitor="val/typo"))
    with pytest.raises(RuntimeError, match=r"`val/typo`.*Available metrics are: \['val/loss'\]"):
        make_trainer(tmp_path, [callback], max_epochs=2).fit(TinyModule())


def test_a_scheduler_from_configure_optimizers_is_refused_before_training(tmp_path: Path) -> None:
    module = TinyModule(scheduler=lambda o: lr_scheduler.StepLR(o, 1))
    recorder = LRRecorder()
    with pytest.raises(RuntimeError, match="Either return only the optimizer .* or remove the ScheduleCallback"):
        make_trainer(tmp_path, [ScheduleCallback(StepDecay()), recorder]).fit(module)
    assert recorder.lrs == {}


def test_min_lr_above_the_optimizer_lr_is_refused_at_train_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`schedule.min_lr` must be at most the optimizer's lr"):
        make_trainer(tmp_path, [ScheduleCallback(CosineDecay(min_lr=0.5), "step")]).fit(TinyModule(lrs=(0.1,)))


def test_cosine_needs_a_length_when_the_run_has_none(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`schedule.total`"):
        trainer = make_trainer(tmp_path, [ScheduleCallback(CosineDecay(), "epoch")], max_epochs=-1, max_steps=5)
        trainer.fit(TinyModule())


@pytest.mark.parametrize("interval", ["step", "epoch"])
@pytest.mark.parametrize("resume_at", ["epoch", "mid_epoch"])
def test_resume_from_a_checkpoint_continues_the_same_lr_curve(tmp_path: Path, interval: str, resume_at: str) -> None:
    """Uninterrupted vs stopped-and-resumed with ckpt_path: the same LR (==) at every later step, plateau included."""
    metrics = [5.0, 5.0, 5.0, 4.0, 4.0, 4.0, 4.0, 4.0]  # a plateau decided after epoch 2

    def callbacks(ckpt_dir: Path) -> list:
        every = dict(every_n_train_steps=7) if resume_at == "mid_epoch" else dict(every_n_epochs=1)
        plateau = ReducePlateau(monitor="val/metric", factor=0.5, patience=1)
        return [
            ScheduleCallback(StepDecay(step_size=3, gamma=0.7), interval=interval, plateau=plateau),
            ModelCheckpoint(dirpath=ckpt_dir, save_top_k=-1, **every),
        ]

    def module() -> TinyModule:
        return TinyModule(lrs=(0.1, 0.02), n_batches=N_BATCHES, metrics=metrics)

    full = fit_recording(tmp_path / "full", callbacks(tmp_path / "ckpt"), module(), enable_checkpointing=True)
    ckpt = sorted((tmp_path / "ckpt").glob("*.ckpt"))[1]  # the 2nd checkpoint: epoch=1 or step=14
    resumed_module = module()
    resumed_module.validations = int(torch.load(ckpt, weights_only=False)["epoch"]) + (resume_at == "epoch")
    recorder = LRRecorder()
    trainer = make_trainer(
        tmp_path / "resumed", [*callbacks(tmp_path / "ckpt2"), recorder], max_epochs=EPOCHS, enable_checkpointing=True
    )
    trainer.fit(resumed_module, ckpt_path=ckpt)
    first = min(recorder.lrs)
    assert first == (10 if resume_at == "epoch" else 14)
    assert sorted(recorder.lrs) == list(range(first, STEPS))
    for k in recorder.lrs:
        assert recorder.lrs[k] == full.lrs[k], (k, recorder.lrs[k], full.lrs[k])
    last_t = STEPS - 1 if interval == "step" else EPOCHS - 1
    assert close(full.lrs[STEPS - 1][0], 0.5 * StepDecay(step_size=3, gamma=0.7)(last_t, 0.1))  # plateau applied


def test_state_dict_survives_torch_save_pickle_and_deepcopy(tmp_path: Path) -> None:
    callback = ScheduleCallback(StepDecay(), plateau=ReducePlateau(monitor="val/loss"))
    make_trainer(tmp_path, [callback], max_epochs=2).fit(TinyModule(lrs=(0.1, 0.02)))
    state = callback.state_dict()
    torch.save(state, tmp_path / "state.pt")
    for restored in (torch.load(tmp_path / "state.pt", weights_only=True), pickle.loads(pickle.dumps(state)), copy.deepcopy(state)):
        assert restored == state
    fresh = ScheduleCallback(StepDecay(), plateau=ReducePlateau(monitor="val/loss"))
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    assert state["base_lrs"] == [[0.1, 0.02]]


# ---- the Python API: the same defaults as the config options, no late failures --------------------------------


@pytest.mark.parametrize(
    ("schedule", "interval"),
    [(Constant(), "epoch"), (StepDecay(), "epoch"), (CosineDecay(), "step"), (TimeBasedDecay(), "step")],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_without_interval_a_schedule_uses_its_options_interval(schedule, interval: str) -> None:
    from lrsched_pl.config import OPTIONS

    assert ScheduleCallback(schedule).interval == interval
    assert {o.interval for o in OPTIONS.values() if o.cls is type(schedule)} == {interval}


def test_python_cosine_anneals_per_step_as_schedule_cosine_does(tmp_path: Path) -> None:
    """`ScheduleCallback(CosineDecay())`: torch's CosineAnnealingLR over every optimizer step of the run."""
    from lrsched_pl import Warmup

    recorder = LRRecorder()
    make_trainer(tmp_path, [ScheduleCallback(CosineDecay()), recorder]).fit(TinyModule())
    steps = 3 * N_BATCHES
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    reference = lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    for k in range(steps):
        assert close(recorder.lrs[k][0], optimizer.param_groups[0]["lr"]), k
        optimizer.step()
        reference.step()
    assert ScheduleCallback(Warmup(CosineDecay(), "0.1dur")).interval == "step"


@pytest.mark.parametrize("bad", ["cosine", CosineDecay, 0.5, {"name": "cosine"}], ids=repr)
def test_anything_but_a_schedule_is_refused_when_the_callback_is_created(bad) -> None:
    with pytest.raises(ValueError, match=r"`schedule` must be a Schedule instance.*CosineDecay.*StepDecay"):
        ScheduleCallback(bad)
    with pytest.raises(ValueError, match="`plateau` must be a ReducePlateau"):
        ScheduleCallback(StepDecay(), plateau="val/loss")


def test_repr_shows_schedule_interval_and_plateau() -> None:
    text = repr(ScheduleCallback(StepDecay(step_size=3), plateau=ReducePlateau(monitor="val/acc", mode="max")))
    assert text.startswith("ScheduleCallback(schedule=StepDecay(step_size=3, gamma=0.5")
    assert "), interval='epoch', plateau=ReducePlateau(" in text
    assert "ReducePlateau(monitor='val/acc', mode='max'" in text


def test_lengths_given_as_fractions_of_the_run_are_accepted_in_python() -> None:
    from lrsched_pl import Dur

    assert StepDecay(step_size="0.25dur") == StepDecay(step_size=Dur(0.25))
    assert MultiStepDecay(milestones=["0.5dur", "0.75dur"]).milestones == (Dur(0.5), Dur(0.75))
    with pytest.raises(ValueError, match=r"`step_size` must be .*0\.25dur, got 'a quarter'"):
        StepDecay(step_size="a quarter")


def test_errors_name_python_arguments_in_python_and_config_keys_under_hydra(tmp_path: Path) -> None:
    from lrsched_pl.config import schedule_callback

    python = ScheduleCallback(plateau=ReducePlateau(monitor="val/typo"))
    with pytest.raises(RuntimeError, match=r"or set `ReducePlateau\(monitor=\.\.\.\)`"):
        make_trainer(tmp_path / "py", [python], max_epochs=1).fit(TinyModule())
    config = schedule_callback({"name": "constant"}, {"monitor": "val/typo"})
    with pytest.raises(RuntimeError, match=r"or set `plateau\.monitor`"):
        make_trainer(tmp_path / "cfg", [config], max_epochs=1).fit(TinyModule())
    own = schedule_callback({"name": "plateau", "monitor": "val/typo"})
    with pytest.raises(RuntimeError, match=r"or set `schedule\.monitor`"):
        make_trainer(tmp_path / "own", [own], max_epochs=1).fit(TinyModule())
