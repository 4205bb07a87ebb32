"""The Hydra configs: every option composes and builds; every bad value is refused before training, naming its key."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from lrsched_pl import schedules
from lrsched_pl.compose import Product, Sequence
from lrsched_pl.config import OPTIONS, build_schedule, describe, validate
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.plateau import ReducePlateau

SCHEDULE_FILES = sorted(p.stem for p in (ROOT / "conf" / "schedule").glob("*.yaml"))
# Presets: files that set another option's keys (their `name` is that option's), e.g. time_based_epoch.
PRESETS = {"time_based_epoch": "time_based", "linear_to_zero": "linear"}


def test_every_option_has_a_config_file_and_back() -> None:
    assert sorted(set(SCHEDULE_FILES) - set(PRESETS)) == sorted(OPTIONS)


@pytest.mark.parametrize(("preset", "option"), sorted(PRESETS.items()))
def test_presets_are_their_option_with_other_values(compose, preset: str, option: str) -> None:
    cfg = compose(f"schedule={preset}")
    validate(cfg)
    assert cfg.schedule.name == option
    assert type(build_schedule(cfg.schedule)[0]) is OPTIONS[option].cls


def test_time_based_epoch_is_keras_per_epoch_decay(compose) -> None:
    """lr0 / (1 + decay * epoch), the LR changing at epoch boundaries only."""
    schedule, interval, _ = build_schedule(compose("schedule=time_based_epoch").schedule)
    assert interval == "epoch"
    assert [schedule(epoch, 0.1) for epoch in range(4)] == pytest.approx([0.1 / (1 + 0.25 * e) for e in range(4)])


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_every_schedule_option_composes_and_builds(compose, option: str) -> None:
    cfg = compose(f"schedule={option}")
    validate(cfg)
    schedule, interval, plateau = build_schedule(cfg.schedule)
    assert cfg.schedule.name == option
    assert interval == OPTIONS[option].interval
    if option == "plateau":
        assert isinstance(schedule, schedules.Constant) and isinstance(plateau, ReducePlateau)
        assert plateau.monitor == "val/loss"
    else:
        assert type(schedule) is OPTIONS[option].cls and plateau is None


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_yaml_values_equal_the_class_defaults(compose, option: str) -> None:
    """The commented YAML shows the real defaults: building from it equals the class with no arguments."""
    schedule, _, plateau = build_schedule(compose(f"schedule={option}").schedule)
    built = plateau if plateau is not None else schedule
    if option == "sequence":  # no class defaults: the YAML's are hold, then cosine over the second half
        expected = Sequence((schedules.Constant(), schedules.CosineDecay()), (schedules.Dur(0.5),))
    elif option == "product":  # no class defaults either: a cosine envelope over warm restarts
        expected = Product((schedules.CosineDecay(), schedules.CosineRestarts()))
    else:
        expected = OPTIONS[option].cls()
    assert built == expected


def test_overrides_reach_the_schedule(compose) -> None:
    cfg = compose("schedule=multistep", "schedule.milestones=[2,5]", "schedule.gamma=0.2", "schedule.interval=step")
    schedule, interval, _ = build_schedule(cfg.schedule)
    assert schedule == schedules.MultiStepDecay(milestones=(2, 5), gamma=0.2) and interval == "step"


# (overrides, the key the error must name): each refused when the config is composed or validated.
BAD = [
    (["schedule=step", "schedule.gamma=0"], "schedule.gamma"),
    (["schedule=step", "schedule.gamma=1.5"], "schedule.gamma"),
    (["schedule=step", "schedule.gamma=-0.5"], "schedule.gamma"),
    (["schedule=step", "schedule.gamma=nan"], "schedule.gamma"),
    (["schedule=step", "schedule.step_size=0"], "schedule.step_size"),
    (["schedule=step", "schedule.step_size=-3"], "schedule.step_size"),
    (["schedule=step", "schedule.step_size=abc"], "step_size"),
    (["schedule=step", "schedule.step_size=2.5"], "step_size"),
    (["schedule=step", "schedule.gama=0.3"], "gama"),
    (["schedule=step", "+schedule.gama=0.3"], "schedule.gama"),
    (["schedule=typo"], "schedule/typo"),
    (["schedule=multistep", "schedule.milestones=[5,3]"], "schedule.milestones"),
    (["schedule=multistep", "schedule.milestones=[0,3]"], "schedule.milestones[0]"),
    (["schedule=exponential", "schedule.gamma=2"], "schedule.gamma"),
    (["schedule=time_based", "schedule.decay=-0.1"], "schedule.decay"),
    (["schedule=time_based", "schedule.decay=inf"], "schedule.decay"),
    (["schedule=time_based", "schedule.decay_steps=0"], "schedule.decay_steps"),
    (["schedule=time_based", "schedule.staircase=maybe"], "staircase"),
    (["schedule=cosine", "schedule.min_lr=-1"], "schedule.min_lr"),
    (["schedule=cosine", "schedule.min_lr=0.5"], "schedule.min_lr"),  # above optimizer.lr=0.1
    (["schedule=cosine", "schedule.total=0"], "schedule.total"),
    (["schedule=cosine", "schedule.interval=batch"], "interval"),
    (["schedule=plateau", "schedule.factor=1"], "schedule.factor"),
    (["schedule=plateau", "schedule.factor=0"], "schedule.factor"),
    (["schedule=plateau", "schedule.patience=-1"], "schedule.patience"),
    (["schedule=plateau", "schedule.cooldown=-2"], "schedule.cooldown"),
    (["schedule=plateau", "schedule.min_lr=-0.1"], "schedule.min_lr"),
    (["schedule=plateau", "schedule.threshold=-1"], "schedule.threshold"),
    (["schedule=plateau", "schedule.eps=-1"], "schedule.eps"),
    (["schedule=plateau", "schedule.mode=maximum"], "mode"),
    (["schedule=plateau", "schedule.threshold_mode=relative"], "threshold_mode"),
    (["optimizer.lr=0"], "optimizer.lr"),
    (["optimizer.lr=-0.1"], "optimizer.lr"),
    (["optimizer=adam", "optimizer.lr=abc"], "optimizer.lr"),
]


@pytest.mark.parametrize("overrides,key", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_values_are_refused_naming_the_key(compose, overrides: list[str], key: str) -> None:
    with pytest.raises((ConfigValueError, ConfigCompositionException, ValidationError, ConfigKeyError)) as info:
        validate(compose(*overrides))
    message = str(info.value) + str(info.value.__cause__ or "")
    assert key in message, message


def test_range_errors_say_what_is_allowed(compose) -> None:
    with pytest.raises(ConfigValueError, match=r"`schedule.gamma` must be in \(0, 1\], got 1.5"):
        validate(compose("schedule=step", "schedule.gamma=1.5"))
    with pytest.raises(ConfigValueError, match=r"Unknown key `schedule.gama`.*did you mean `gamma`"):
        validate(compose("schedule=step", "+schedule.gama=0.3"))


def test_a_config_error_stops_the_cli_before_lightning_is_imported_and_leaves_no_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "train.py", "schedule=step", "schedule.gamma=1.5", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "`schedule.gamma` must be in (0, 1], got 1.5" in proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "omegaconf" in imported  # importtime did report
    assert not any(name.split(".")[0] in ("lightning", "torch") for name in imported)
    assert not run_dir.exists()


def _signature_keys(cls: type) -> set[str]:
    return {n for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self" and p.kind != p.VAR_KEYWORD}


def test_every_trainer_and_callback_argument_is_overridable_without_plus(compose) -> None:
    """The YAML lists every argument, so `trainer.<arg>=` works for all of them (Lightning adding one fails here)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    cfg = compose()
    listed = lambda node: set(node) - {"_target_"}  # noqa: E731
    assert listed(cfg.trainer) == _signature_keys(pl.Trainer) - {"logger", "callbacks"}
    assert listed(cfg.callbacks.model_checkpoint) == _signature_keys(ModelCheckpoint)
    assert listed(cfg.callbacks.learning_rate_monitor) == _signature_keys(LearningRateMonitor)
    assert listed(cfg.logger) == _signature_keys(TensorBoardLogger)
    cfg = compose(
        "trainer.accumulate_grad_batches=4",
        "trainer.val_check_interval=0.5",
        "callbacks.model_checkpoint.every_n_train_steps=50",
    )
    assert cfg.trainer.accumulate_grad_batches == 4 and cfg.callbacks.model_checkpoint.every_n_train_steps == 50


def test_hparams_have_the_same_keys_for_every_option(compose) -> None:
    keys = {tuple(sorted(describe(compose(f"schedule={o}")))) for o in SCHEDULE_FILES}
    assert keys == {("lr", "optimizer", "schedule", "schedule_params", "seed")}
    params = describe(compose("schedule=step", "optimizer=adam"))
    assert params["schedule"] == "step" and params["optimizer"] == "Adam" and params["lr"] == 1e-3
    assert params["schedule_params"] == (
        "end_factor=None, gamma=0.5, interval=epoch, step_size=10, warmup=0, warmup_shape=linear, warmup_start_factor=0.0"
    )


def test_schema_types_reach_the_composed_config(compose) -> None:
    cfg = compose("schedule=plateau", "schedule.mode=max")
    assert OmegaConf.to_container(cfg.schedule, enum_to_str=True)["mode"] == "max"
