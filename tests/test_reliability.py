"""Reliability beyond resume: non-finite and missing metrics, bad input refused before training, steps rather than
batches (accumulation, param groups, manual optimization, the LR finder), determinism, and a sweep in which one job
fails."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import typing
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ROOT, LRRecorder, TinyModule, close, f32_equal, make_trainer, read_scalars
from hydra.errors import ConfigCompositionException
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf.errors import ConfigKeyError, ValidationError
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.optim import lr_scheduler

from lrsched_pl import CosineDecay, ReducePlateau, ScheduleCallback, StepDecay, TimeBasedDecay
from lrsched_pl.config import OPTIONS, build_parts, validate
from lrsched_pl.errors import ConfigValueError, UnknownKeyError
from lrsched_pl.run import train

nan, inf = math.nan, math.inf
SMALL = ["trainer.max_epochs=3", "trainer.limit_train_batches=4", "trainer.enable_progress_bar=false"]


def fit_plateau(tmp_path: Path, module: TinyModule, plateau: ReducePlateau, **kwargs: Any) -> tuple[LRRecorder, list]:
    """Fits with a constant schedule under ``plateau``; returns the LRs per step and the warnings raised."""
    recorder = LRRecorder()
    trainer = make_trainer(tmp_path, [ScheduleCallback(plateau=plateau), recorder], logger=False, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module)
    return recorder, [w for w in caught if issubclass(w.category, (RuntimeWarning, UserWarning))]


def lrs_per_epoch(recorder: LRRecorder, n_batches: int) -> list[float]:
    return [recorder.lrs[k][0] for k in range(0, len(recorder.lrs), n_batches)]


# ---- 6. non-finite and missing metrics ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode,metrics,want_lrs,best",
    [
        # min: NaN, +inf and -inf are all bad (patience 0: each one reduces) and -inf never becomes the best,
        # so 0.4 after it still improves; torch would keep best = -inf and cut the LR at every validation
        ("min", [1.0, nan, 0.5, inf, -inf, 0.4, nan, 0.3], [1, 1, 0.5, 0.5, 0.25, 0.125, 0.125, 0.0625], 0.3),
        ("max", [1.0, inf, 2.0, nan, -inf, 3.0], [1, 1, 0.5, 0.5, 0.25, 0.125], 3.0),
    ],
)
def test_non_finite_metrics_count_as_bad_never_best_and_warn_once(
    tmp_path: Path, mode: str, metrics: list[float], want_lrs: list[float], best: float
) -> None:
    plateau = ReducePlateau(monitor="val/metric", mode=mode, patience=0)
    module = TinyModule(lrs=(0.1,), n_batches=2, metrics=metrics)
    recorder, caught = fit_plateau(tmp_path, module, plateau, max_epochs=len(metrics))
    assert lrs_per_epoch(recorder, 2) == [0.1 * f for f in want_lrs]
    assert plateau.best == float(torch.tensor(best)) and math.isfinite(plateau.best)  # self.log stores float32
    nonfinite = [w for w in caught if "counted as a validation without improvement" in str(w.message)]
    assert len(nonfinite) == 1 and issubclass(nonfinite[0].category, RuntimeWarning)
    # torch's ReduceLROnPlateau on the same values: a non-finite best, so a different LR curve
    opt = torch.optim.SGD([torch.zeros(1)], lr=0.1)
    ref = lr_scheduler.ReduceLROnPlateau(opt, mode=mode, patience=0)
    torch_lrs = [0.1]
    for m in metrics[:-1]:
        ref.step(m)
        torch_lrs.append(opt.param_groups[0]["lr"])
    assert torch_lrs != [0.1 * f for f in want_lrs] and not math.isfinite(ref.best)


class SometimesLogged(TinyModule):
    """Logs ``val/metric`` only on even epochs."""

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking and self.current_epoch % 2 == 0:
            self.log("val/metric", self.metrics[self.current_epoch])


def test_a_missing_metric_is_skipped_with_one_warning_when_not_strict(tmp_path: Path) -> None:
    plateau = ReducePlateau(monitor="val/metric", patience=0, strict=False)
    module = SometimesLogged(lrs=(0.1,), n_batches=2, metrics=[1.0, 9.0, 2.0, 9.0, 0.5, 9.0])
    recorder, caught = fit_plateau(tmp_path, module, plateau, max_epochs=6)
    # seen: 1.0 (epoch 0), 2.0 (epoch 2: bad, reduce), 0.5 (epoch 4); epochs 1, 3, 5 skipped, counters untouched
    assert lrs_per_epoch(recorder, 2) == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05]
    assert (plateau.best, plateau.num_bad, plateau.scale) == (0.5, 0, 0.5)
    missing = [str(w.message) for w in caught if "was not logged during validation" in str(w.message)]
    assert len(missing) == 1 and "Available metrics are: ['val/loss']" in missing[0] and "skipped" in missing[0]


def test_a_missing_metric_stops_the_run_by_default_listing_the_logged_ones(compose, tmp_path: Path) -> None:
    cfg = compose("schedule=plateau", "schedule.monitor=val/los", *SMALL)
    listed = r"Available metrics are: \['train/loss', 'val/acc', 'val/loss'\]"
    with pytest.raises(RuntimeError, match=r"monitors `val/los`.*" + listed):
        train(cfg)


def test_strict_is_a_plateau_config_key(compose) -> None:
    _, _, plateau = build_parts(compose("schedule=plateau", "schedule.strict=false").schedule)
    assert plateau.strict is False and ReducePlateau().strict is True
    with pytest.raises(ConfigValueError, match=r"`schedule.strict` must be true or false, got 'sometimes'"):
        validate(compose("schedule=plateau", "schedule.strict=sometimes"))
    with pytest.raises(ConfigValueError, match=r"`strict` must be true or false, got 'no'"):
        ReducePlateau(strict="no")


# ---- 7. bad input, refused before training, naming the key --------------------------------------------------------


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _is_float(hint: Any) -> bool:
    args = typing.get_args(hint)
    return hint is float or (set(args) == {float, type(None)})


def _wrong_type(hint: Any) -> str | None:
    """A value of the wrong type for a key: a word for numbers and lengths, not-a-bool, a value off the enum."""
    if hint is bool:
        return "sometimes"
    if typing.get_origin(hint) is typing.Literal:
        return "bogus"
    if hint is int or _is_float(hint) or "Dur" in str(hint):
        return "abc"
    return None


def bad_inputs() -> list[tuple[list[str], str]]:
    """For every option: a force-added unknown key, NaN and inf for each float key, a wrong type for each typed key;
    the same for the plateau group."""
    cases: list[tuple[list[str], str]] = []
    groups = [(f"schedule={o}", "schedule", spec.cls) for o, spec in OPTIONS.items()]
    groups.append(("plateau=val_loss", "plateau", ReducePlateau))
    for select, where, cls in groups:
        cases.append(([select, f"+{where}.bogus_key=1"], f"{where}.bogus_key"))
        for key, hint in _fields(cls).items():
            if _is_float(hint):
                cases += [([select, f"{where}.{key}={value}"], f"{where}.{key}") for value in ("nan", "inf")]
            wrong = _wrong_type(hint)
            if wrong is not None and not _is_float(hint):
                cases.append(([select, f"{where}.{key}={wrong}"], key))
    cases += [
        (["schedule=step", "schedule.warmup_start_factor=nan"], "schedule.warmup_start_factor"),
        (["schedule=step", "schedule.warmup=-2"], "schedule.warmup"),
        (["schedule=step", "schedule.warmup=2dur"], "schedule.warmup"),
        (["optimizer.lr=nan"], "optimizer.lr"),
        (["optimizer.lr=inf"], "optimizer.lr"),
        (["optimizer=adam", "optimizer.lr=-inf"], "optimizer.lr"),
    ]
    return cases


BAD_INPUTS = bad_inputs()


def test_more_than_a_hundred_distinct_bad_inputs() -> None:
    assert len({" ".join(o) for o, _ in BAD_INPUTS}) == len(BAD_INPUTS) > 100


@pytest.mark.parametrize("overrides,key", BAD_INPUTS, ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_each_bad_input_is_refused_naming_its_key(compose, overrides: list[str], key: str) -> None:
    with pytest.raises((ConfigValueError, ConfigCompositionException, ValidationError, ConfigKeyError)) as info:
        validate(compose(*overrides))
    message = str(info.value) + str(info.value.__cause__ or "")
    assert key in message, message
    if overrides[-1].startswith("+"):
        assert isinstance(info.value, UnknownKeyError)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["schedule=onecycle", "+schedule.max_lr_typo=1"], "Unknown key `schedule.max_lr_typo`"),
        (["schedule=cyclic", "schedule.gamma=nan"], "`schedule.gamma` must be in (0, 1], got nan"),
        (["schedule=plateau", "schedule.patience=abc"], "`schedule.patience` must be an int >= 0, got 'abc'"),
    ],
)
def test_a_refused_config_leaves_no_run_dir(tmp_path: Path, overrides: list[str], message: str) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "train.py", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert not run_dir.exists()


@pytest.mark.slow
def test_an_error_at_train_start_leaves_no_run_dir(tmp_path: Path) -> None:
    """cosine's length is known only once the Trainer exists: refused then, before the first step, and what Hydra
    and the logger had written for this run (events, hparams.yaml, .hydra/, the log) is removed."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "train.py", "schedule=cosine", "trainer.max_epochs=-1", "trainer.max_steps=-1",
         f"hydra.run.dir={run_dir}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0 and "`schedule.total` must be set when the run has no fixed length" in proc.stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_an_error_at_train_start_keeps_what_the_directory_already_held(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    proc = subprocess.run(
        [sys.executable, "train.py", "schedule=cosine", "schedule.warmup=100000", f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0 and "`schedule.warmup` must be shorter than the run" in proc.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "notes.txt", "train.log"]


# ---- 8. steps, not batches -----------------------------------------------------------------------------------------


def test_accumulation_with_three_param_groups_counts_optimizer_steps(tmp_path: Path) -> None:
    recorder = LRRecorder()
    callbacks = [LearningRateMonitor(logging_interval="step"), ScheduleCallback(CosineDecay(), "step"), recorder]
    trainer = make_trainer(tmp_path, callbacks, max_epochs=2, accumulate_grad_batches=4)
    trainer.fit(TinyModule(lrs=(0.1, 0.03, 0.01), n_batches=8))
    assert trainer.global_step == 4 and sorted(recorder.lrs) == [0, 1, 2, 3]  # 16 batches, 4 optimizer steps
    for k, lrs in recorder.lrs.items():  # cosine over the 4 optimizer steps, every group by the same factor
        assert all(close(lr, lr0 * (1 + math.cos(math.pi * k / 4)) / 2) for lr, lr0 in zip(lrs, (0.1, 0.03, 0.01))), k
    for group in (0, 1, 2):
        logged = read_scalars(tmp_path, f"lr-SGD/pg{group + 1}")
        assert {step for step, _ in logged} == {0, 1, 2, 3}
        assert all(f32_equal(v, recorder.lrs[step][group]) for step, v in logged)  # every micro-batch row agrees


class Manual(TinyModule):
    """Manual optimization: SGD on two param groups (and Adam on the second layer with ``optimizers=2``)."""

    def __init__(self, optimizers: int = 1, **kwargs: Any) -> None:
        super().__init__(lrs=(0.1, 0.02), **kwargs)
        self.automatic_optimization = False
        self.n_optimizers = optimizers
        self.used: dict[int, list[list[float]]] = {}  # batch index -> the LRs of each optimizer's step

    def training_step(self, batch: Any, batch_idx: int) -> None:
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        self.manual_backward(super().training_step(batch, batch_idx))
        self.used[self.trainer.fit_loop.epoch_loop.total_batch_idx] = [[g["lr"] for g in o.param_groups] for o in opts]
        for opt in opts:
            opt.step()
            opt.zero_grad()

    def configure_optimizers(self) -> Any:
        groups = [{"params": layer.parameters(), "lr": lr} for layer, lr in zip(self.layers, (0.1, 0.02))]
        sgd = torch.optim.SGD(groups)
        return sgd if self.n_optimizers == 1 else [sgd, torch.optim.Adam(self.layers[1].parameters(), lr=0.01)]


def test_manual_optimization_with_one_optimizer_follows_the_step_schedule(tmp_path: Path) -> None:
    module = Manual(n_batches=4)
    make_trainer(tmp_path, [ScheduleCallback(TimeBasedDecay(decay=1.0), "step")], max_epochs=2).fit(module)
    assert sorted(module.used) == list(range(8))
    for batch, (lrs,) in module.used.items():
        assert close(lrs[0], 0.1 / (1 + batch)) and close(lrs[1], 0.02 / (1 + batch)), batch


def test_manual_optimization_with_two_optimizers_follows_an_epoch_schedule(tmp_path: Path) -> None:
    module = Manual(optimizers=2, n_batches=4)
    make_trainer(tmp_path, [ScheduleCallback(StepDecay(step_size=1, gamma=0.5), "epoch")], max_epochs=3).fit(module)
    for batch, (sgd, adam) in module.used.items():
        factor = 0.5 ** (batch // 4)
        assert sgd == [0.1 * factor, 0.02 * factor] and adam == [0.01 * factor], batch


def test_manual_optimization_with_two_optimizers_and_a_step_schedule_is_correct_or_refused(tmp_path: Path) -> None:
    module = Manual(optimizers=2, n_batches=4)
    trainer = make_trainer(tmp_path, [ScheduleCallback(CosineDecay(), "step")], max_epochs=2)
    try:
        trainer.fit(module)
    except RuntimeError as err:
        assert "manual optimization" in str(err)
        return
    for batch, (sgd, _) in module.used.items():  # one schedule step per training batch, cosine over the 8 batches
        assert close(sgd[0], 0.1 * (1 + math.cos(math.pi * batch / 8)) / 2), (batch, sgd)


class FinderModule(TinyModule):
    """A module whose LR the LR finder can set (``update_attr``): ``self.lr``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lr = 0.1

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def test_the_lr_finder_runs_without_the_callback_and_the_fit_then_scales_the_suggested_lr(tmp_path: Path) -> None:
    from lightning.pytorch.tuner import Tuner

    callback, recorder = ScheduleCallback(StepDecay(step_size=2, gamma=0.5), "step"), LRRecorder()
    trainer = make_trainer(tmp_path, [callback, recorder], max_epochs=1, default_root_dir=tmp_path, logger=False)
    module = FinderModule(n_batches=40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        finder = Tuner(trainer).lr_find(module, min_lr=1e-4, max_lr=1.0, num_training=30, early_stop_threshold=None)
        # Lightning swaps in its own callbacks for the search: ours neither ran nor kept anything
        assert recorder.lrs == {} and callback.base_lrs is None and len(finder.results["lr"]) == 30
        suggested = finder.suggestion()
        assert suggested is not None and module.lr == suggested
        trainer.fit(module)
    assert callback.base_lrs == [[suggested]]
    assert [recorder.lrs[k][0] for k in range(4)] == [suggested, suggested, suggested * 0.5, suggested * 0.5]
    assert not [w for w in caught if "ScheduleCallback" in str(w.message)]


# ---- 9. determinism -----------------------------------------------------------------------------------------------


def all_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_same_config_and_seed_give_identical_lr_and_metric_logs(compose, tmp_path: Path) -> None:
    common = ["schedule=cosine", "plateau=val_loss", "plateau.patience=0", "data.batch_size=32", *SMALL]
    logs = {}
    for name, seed in (("a", 7), ("b", 7), ("other_seed", 8)):
        train(compose(*common, f"seed={seed}", output_dir=tmp_path / name))
        logs[name] = all_scalars(tmp_path / name)
    assert {"lr-SGD", "val/loss", "val/acc", "train/loss"} <= set(logs["a"])
    assert logs["a"] == logs["b"]  # every tag, step and value, bit for bit
    assert logs["a"]["val/loss"] != logs["other_seed"]["val/loss"]  # the seed does matter: the check has teeth


# ---- 10. a sweep in which one job fails ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_job_failing_in_training_leaves_the_other_jobs_of_the_sweep_intact(tmp_path: Path) -> None:
    """The middle job monitors a metric that is never logged: it fails at its first validation's end, after
    training steps were logged; the jobs before and after it complete with all their results."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "train.py", "-m", "schedule=plateau", "schedule.monitor=val/loss,val/typo,val/acc",
         "trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.enable_progress_bar=false",
         f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0  # Hydra reports the failed job once the sweep is done
    assert "Error executing job with overrides: ['schedule=plateau', 'schedule.monitor=val/typo'" in proc.stderr
    assert "monitors `val/typo`" in proc.stderr
    for job in ("0", "2"):
        assert [s for s, _ in read_scalars(sweep / job, "lr-SGD")] == list(range(6))
        assert len(read_scalars(sweep / job, "val/loss")) == 2 and len(read_scalars(sweep / job, "val/acc")) == 2
        assert (sweep / job / "checkpoints" / "last.ckpt").exists() and (sweep / job / "hparams.yaml").exists()
    failed = sweep / "1"
    assert [s for s, _ in read_scalars(failed, "lr-SGD")] == [0, 1, 2]  # it trained one epoch, then stopped
    assert not (failed / "checkpoints").exists()
