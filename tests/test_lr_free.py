"""Learning-rate-free optimizers (Prodigy, D-Adaptation) under a schedule: trained through ``lrsched_pl.run.train`` on
the default task, their step-size estimate ``d * lr`` read back from TensorBoard; the new optimizer options compose,
validate and get their companion callback."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from conftest import f32_equal, read_scalars

from lrsched_pl.companions import companion_callbacks
from lrsched_pl.config import validate

STEPS = 8


class DRecorder(pl.Callback):
    """Records ``(lr, d)`` of the first param group right before every optimizer step (a test-only callback,
    added with ``+callbacks.d_recorder._target_=test_lr_free.DRecorder``)."""

    last: DRecorder | None = None

    def __init__(self) -> None:
        self.seen: dict[int, tuple[float, float]] = {}
        DRecorder.last = self

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        group = optimizer.param_groups[0]
        self.seen[trainer.global_step] = (group["lr"], group["d"])


@pytest.mark.parametrize(("option", "name"), [("prodigy", "Prodigy"), ("dadapt_adam", "DAdaptAdam")])
def test_lr_free_with_cosine_logs_its_step_size(compose, tmp_path: Path, option: str, name: str) -> None:
    pytest.importorskip({"prodigy": "prodigyopt", "dadapt_adam": "dadaptation"}[option])
    from lrsched_pl.run import train

    cfg = compose(
        f"optimizer={option}", "schedule=cosine", f"trainer.max_steps={STEPS}", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "~callbacks.model_checkpoint",
        "+callbacks.d_recorder._target_=test_lr_free.DRecorder",
    )  # fmt: skip
    validate(cfg)
    train(cfg)
    seen = DRecorder.last.seen
    assert sorted(seen) == list(range(STEPS))
    lrs = dict(read_scalars(tmp_path, f"lr-{name}"))
    logged = dict(read_scalars(tmp_path, f"d*lr-{name}"))
    assert sorted(logged) == list(range(STEPS))
    for k in range(STEPS):
        lr, d = seen[k]
        assert lr == 0.5 * (1 + math.cos(math.pi * k / STEPS))  # cosine at lr0 = 1.0
        assert f32_equal(lrs[k], lr)
        assert f32_equal(logged[k], d * lr), (k, logged[k], d * lr)
    d0 = seen[0][1]
    assert seen[STEPS - 1][1] > 2 * d0  # the estimate moved: d*lr is not just the schedule


@pytest.mark.parametrize(
    ("option", "companion"),
    [("schedulefree_sgd", "ScheduleFreeCallback"), ("schedulefree_adamw", "ScheduleFreeCallback"),
     ("prodigy", "StepSizeMonitor"), ("dadapt_adam", "StepSizeMonitor"), ("sgd", None)],
)  # fmt: skip
def test_optimizer_options_validate_and_get_their_companion(compose, option: str, companion: str | None) -> None:
    cfg = compose(f"optimizer={option}", "schedule=cosine")
    validate(cfg)
    added = companion_callbacks(cfg, [])
    assert [type(c).__name__ for c in added] == ([companion] if companion else [])
    assert companion_callbacks(cfg, added) == []  # never twice


MODERN = {  # baseline -> (schedule name, optimizer class, peak LR, what else the job must have)
    "constant": ("constant", "torch.optim.SGD", 0.44, {}),
    "cosine": ("cosine", "torch.optim.SGD", 0.44, {}),
    "linear_to_zero": ("linear", "torch.optim.SGD", 0.44, {"end_factor": 0.0, "total": None}),
    "wsd_1sqrt": ("wsd", "torch.optim.SGD", 0.44, {"decay_type": "1-sqrt", "decay": "0.2dur"}),
    "schedulefree_sgd": ("constant", "schedulefree.SGDScheduleFree", 3.8, {}),
    "schedulefree_adamw": ("constant", "schedulefree.AdamWScheduleFree", 0.018, {}),
    "prodigy_cosine": ("cosine", "prodigyopt.Prodigy", 1.0, {}),
}


def test_modern_baselines_expands_to_valid_jobs() -> None:
    """``experiment=modern_baselines``: 7 baselines x seeds 1-3, each job composed by Hydra and validated."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
    from test_sweep import compose_with_hydra

    cfg = compose_with_hydra("experiment=modern_baselines")
    assert cfg.hydra.mode.name == "MULTIRUN"
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), max_batch_size=None)
    assert len(batch) == len(MODERN) * 3
    seen = set()
    for overrides in batch:
        job = compose_with_hydra("experiment=modern_baselines", *overrides)
        validate(job)
        baseline = dict(o.lstrip("+").split("=") for o in overrides)["baseline"]
        name, target, lr, extra = MODERN[baseline]
        schedule = OmegaConf.to_container(job.schedule, enum_to_str=True)
        assert (schedule["name"], job.optimizer._target_, job.optimizer.lr) == (name, target, lr)
        assert schedule["warmup"] == "0.05dur" and {k: schedule[k] for k in extra} == extra
        assert job.trainer.max_epochs == 20
        seen.add((baseline, job.seed))
    assert seen == {(b, s) for b in MODERN for s in (1, 2, 3)}


def test_linear_to_zero_decays_to_zero_over_the_whole_run(compose) -> None:
    from lrsched_pl.config import build_schedule

    cfg = compose("schedule=linear_to_zero")
    validate(cfg)
    schedule, interval, _ = build_schedule(cfg.schedule)
    bound = schedule.bind(200)
    assert interval == "step" and cfg.schedule.name == "linear"
    assert [bound(t, 0.5) for t in (0, 50, 199, 200)] == pytest.approx([0.5, 0.375, 0.5 / 200, 0.0])
