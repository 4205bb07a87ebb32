"""Scheduled values beyond the LR: weight decay, momentum and any param-group key, for every group or named ones.

Each value written is checked per optimizer step in the optimizer (what the step used) and in TensorBoard (what
``LearningRateMonitor`` logged) against an independent reference: torch's own schedulers stepping a dummy
optimizer whose "lr" plays the value (``CosineAnnealingLR`` has no notion of what it scales), or the closed form.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import ROOT, TinyModule, f32_equal, make_trainer, read_scalars, torch_lr_curve
from lightning.pytorch.callbacks import LearningRateMonitor
from torch.optim.lr_scheduler import CosineAnnealingLR

from lrsched_pl import ScheduleCallback
from lrsched_pl.config import build_values, validate
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.schedules import Constant, CosineDecay, LinearDecay, StepDecay
from lrsched_pl.values import ScheduledValue

N_BATCHES, EPOCHS = 5, 2
STEPS = N_BATCHES * EPOCHS


class Used(pl.Callback):
    """Per optimizer step, every param group as the step used it (lr, weight_decay, momentum, betas)."""

    def __init__(self) -> None:
        self.steps: dict[int, list[dict[str, Any]]] = {}

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        self.steps[trainer.global_step] = [
            {k: g.get(k) for k in ("lr", "weight_decay", "momentum", "betas")} for g in optimizer.param_groups
        ]


def fit(tmp_path: Path, callback: ScheduleCallback, optimizer: str = "sgd") -> Used:
    used = Used()
    trainer = make_trainer(tmp_path, [callback, LearningRateMonitor(), used], max_epochs=EPOCHS)
    trainer.fit(TinyModule(lrs=(0.1, 0.02), n_batches=N_BATCHES, optimizer=optimizer))
    assert sorted(used.steps) == list(range(STEPS))
    return used


def test_weight_decay_and_momentum_schedules_are_used_and_logged_at_every_step(tmp_path: Path) -> None:
    # DINO's weight decay: cosine from 0.04 up to 0.4; SGD momentum linear from 0.85 to 0.95
    callback = ScheduleCallback(
        CosineDecay(),
        values=[
            ScheduledValue("weight_decay", CosineDecay(min_lr=0.4), "step", groups=("pg1", "pg2"), start=0.04),
            ScheduledValue("momentum", LinearDecay(end_factor=0.95 / 0.85), "step", start=0.85),
        ],
    )
    used = fit(tmp_path, callback)
    wd_ref = torch_lr_curve(lambda o: CosineAnnealingLR(o, T_max=STEPS, eta_min=0.4), STEPS, (0.04, 0.04))
    mom_ref = [[0.85 + (0.95 - 0.85) * k / STEPS] * 2 for k in range(STEPS)]  # LinearLR refuses factors > 1
    lr_ref = torch_lr_curve(lambda o: CosineAnnealingLR(o, T_max=STEPS), STEPS, (0.1, 0.02))
    for k in range(STEPS):
        for g in range(2):
            assert math.isclose(used.steps[k][g]["weight_decay"], wd_ref[k][g], rel_tol=1e-9), (k, g)
            assert math.isclose(used.steps[k][g]["momentum"], mom_ref[k][g], rel_tol=1e-9), (k, g)
            assert math.isclose(used.steps[k][g]["lr"], lr_ref[k][g], rel_tol=1e-9, abs_tol=1e-15), (k, g)
    assert used.steps[STEPS - 1][0]["weight_decay"] > 0.39  # it grew, as asked
    # LearningRateMonitor logs them because the callback schedules them (no flag set by hand)
    for tag, key in (("weight_decay", "weight_decay"), ("momentum", "momentum")):
        for g in range(2):
            logged = read_scalars(tmp_path, f"lr-SGD/pg{g + 1}-{tag}")  # Lightning counts unnamed groups from 1
            assert sorted({s for s, _ in logged}) == list(range(STEPS))
            assert all(f32_equal(v, used.steps[s][g][key]) for s, v in logged), (tag, g)


def test_a_momentum_schedule_writes_adams_beta1_and_keeps_beta2(tmp_path: Path) -> None:
    callback = ScheduleCallback(Constant(), values=[ScheduledValue("momentum", StepDecay(step_size=4, gamma=0.5))])
    used = fit(tmp_path, callback, optimizer="adam")
    for k in range(STEPS):
        for g in range(2):
            assert used.steps[k][g]["betas"] == (0.9 * 0.5 ** (k // 4), 0.999), (k, used.steps[k][g])
    logged = read_scalars(tmp_path, "lr-Adam/pg2-momentum")
    assert all(f32_equal(v, 0.9 * 0.5 ** (s // 4)) for s, v in logged) and {s for s, _ in logged} == set(range(STEPS))


def test_each_named_group_follows_its_own_schedule_and_the_rest_the_shared_one(tmp_path: Path) -> None:
    callback = ScheduleCallback(
        CosineDecay(), values=[ScheduledValue("lr", Constant(), groups=("pg2",), start=0.5)]
    )
    used = fit(tmp_path, callback)
    shared = torch_lr_curve(lambda o: CosineAnnealingLR(o, T_max=STEPS), STEPS, (0.1,))
    for k in range(STEPS):
        assert math.isclose(used.steps[k][0]["lr"], shared[k][0], rel_tol=1e-9, abs_tol=1e-15)
        assert used.steps[k][1]["lr"] == 0.5
    assert {v for _, v in read_scalars(tmp_path, "lr-SGD/pg2")} == {0.5}


def test_a_weight_decay_schedule_for_every_group_leaves_no_decay_groups_alone(tmp_path: Path) -> None:
    class TwoGroups(TinyModule):
        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(
                [{"params": self.layers[0].parameters(), "name": "decay", "weight_decay": 0.1},
                 {"params": self.layers[1].parameters(), "name": "no_decay", "weight_decay": 0.0}], lr=0.1,
            )  # fmt: skip

    used = Used()
    callback = ScheduleCallback(values=[ScheduledValue("weight_decay", StepDecay(step_size=2, gamma=0.5))])
    make_trainer(tmp_path, [callback, used], max_epochs=1).fit(TwoGroups(lrs=(0.1, 0.1), n_batches=N_BATCHES))
    assert [s[0]["weight_decay"] for s in used.steps.values()] == [0.1 * 0.5 ** (k // 2) for k in range(N_BATCHES)]
    assert all(s[1]["weight_decay"] == 0.0 for s in used.steps.values())


@pytest.mark.parametrize(
    "values, message",
    [
        ([ScheduledValue("lr", Constant(), groups=("head",))], "one of the optimizer's param groups ['pg1', 'pg2']"),
        ([ScheduledValue("dampening", Constant())], "whose param group `pg1` has no `dampening`"),
        ([ScheduledValue("lr", Constant(), groups=("pg1",)), ScheduledValue("lr", Constant(), groups=("pg1",))],
         "both would write `lr` of param group `pg1`"),
        ([ScheduledValue("weight_decay", Constant(), start=0.1)], "every group has `weight_decay` 0"),
    ],
)  # fmt: skip
def test_values_that_cannot_be_written_are_refused_before_the_first_step(tmp_path: Path, values, message) -> None:
    trainer = make_trainer(tmp_path, [ScheduleCallback(values=values)], max_epochs=1, logger=False)
    module = TinyModule(lrs=(0.1, 0.02), n_batches=2, optimizer="adam")
    with pytest.raises(ConfigValueError) as err:
        trainer.fit(module)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert module.layers[0].weight.grad is None  # not a single step


@pytest.mark.parametrize(
    "overrides, key, allowed",
    [
        (["wd_schedule=cosine", "wd_schedule.min_lr=-1"], "wd_schedule.min_lr", ">= 0"),
        (["momentum_schedule=cosine", "momentum_schedule.start=1.5"], "momentum_schedule.start", "[0, 1)"),
        (["momentum_schedule=cosine", "optimizer=adagrad"], "momentum_schedule", "no momentum"),
        (["momentum_schedule=cosine", "schedule=onecycle"], "momentum_schedule", "cycle_momentum=false"),
        (["wd_schedule=onecycle", "wd_schedule.cycle_momentum=true"], "wd_schedule.cycle_momentum", "only `schedule=`"),
        (["+group_schedules.head.lr.name=constant"], "group_schedules.head.lr", "named groups"),
        (["param_groups=modules", "+group_schedules.head.lr.name=nope"], "group_schedules.head.lr.name", "one of"),
        (["schedule=step", "param_groups=modules", "+group_schedules.head.lr.gama=1"], "group_schedules.head.lr.gama", "did you mean"),
        (["param_groups=modules", "+group_schedules.head.weight_decay.min_lr=1"], "group_schedules.head.weight_decay.name",
         "one of"),
        (["param_groups=modules", "+group_schedules.head.lr=[1]"], "group_schedules.head.lr", "a schedule node"),
        (["rebind=maybe"], "rebind", "true or false"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_up_front_naming_the_key(compose, overrides, key, allowed) -> None:
    with pytest.raises(ConfigValueError) as err:
        validate(compose(*overrides))
    text = str(err.value)
    assert f"`{key}`" in text or text.startswith(key) or f" {key} " in text, text
    assert allowed in text and "\n" not in text, text


def test_every_schedule_option_but_the_plateau_is_a_value_option() -> None:
    schedule = {p.stem for p in (ROOT / "conf" / "schedule").glob("*.yaml")} - {"plateau"}
    for group, key in (("wd_schedule", "weight_decay"), ("momentum_schedule", "momentum")):
        assert {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")} == schedule, group
    values, names = build_values({"name": "cosine", "min_lr": 0.4}, None, {"head": {"lr": "constant"}})
    assert names == ["wd_schedule", "group_schedules.head.lr"]
    assert [(v.key, v.groups) for v in values] == [("weight_decay", None), ("lr", ("head",))]


def test_from_the_command_line_a_head_and_a_backbone_each_on_their_schedule(tmp_path: Path) -> None:
    """The README's example: a head at 10x the backbone's LR with no warmup, the backbone warming up over 25%;
    weight decay and momentum on schedules too; what TensorBoard shows is the formula."""
    run = tmp_path / "run"
    cmd = [
        sys.executable, "train.py", "param_groups=modules", "+group_schedules.head.lr.warmup=0",
        "schedule=cosine", "schedule.warmup=0.25dur", "optimizer.weight_decay=0.01", "wd_schedule=cosine",
        "wd_schedule.min_lr=0.1", "momentum_schedule=cosine", "momentum_schedule.start=0.85",
        "momentum_schedule.min_lr=0.95", "trainer.max_epochs=2", "+trainer.limit_train_batches=4",
        f"hydra.run.dir={run}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    n, warm, lr0 = 8, 2, 0.1

    def backbone(t: int) -> float:  # the README's formulas: linear warmup from 0, then cosine over the rest
        return lr0 * t / warm if t < warm else lr0 * (1 + math.cos(math.pi * (t - warm) / (n - warm))) / 2

    def cosine(t: int, start: float, end: float) -> float:
        return end + (start - end) * (1 + math.cos(math.pi * t / n)) / 2

    expected = {
        "lr-SGD/head": lambda t: 10 * lr0 * (1 + math.cos(math.pi * t / n)) / 2,
        "lr-SGD/backbone": backbone,
        "lr-SGD/head-weight_decay": lambda t: cosine(t, 0.01, 0.1),
        "lr-SGD/backbone-momentum": lambda t: cosine(t, 0.85, 0.95),
    }
    for tag, formula in expected.items():
        logged = read_scalars(run, tag)
        assert [s for s, _ in logged] == list(range(n)), tag
        assert all(f32_equal(v, formula(s)) for s, v in logged), (tag, logged)


def test_the_preview_shows_every_scheduled_value_as_training_would_write_it() -> None:
    from lrsched_pl.preview import curve

    c = curve(["param_groups=modules", "+group_schedules.head.lr.warmup=0", "schedule=cosine", "schedule.warmup=2",
               "optimizer.weight_decay=0.01", "wd_schedule=cosine", "wd_schedule.min_lr=0.1", "trainer.max_epochs=1",
               "+trainer.limit_train_batches=10"])  # fmt: skip
    n = 10
    assert list(c.values) == ["weight_decay", "lr[head]"]
    for t in range(n):
        assert math.isclose(c.values["weight_decay"][t], 0.1 + (0.01 - 0.1) * (1 + math.cos(math.pi * t / n)) / 2)
        assert math.isclose(c.values["lr[head]"][t], 1.0 * (1 + math.cos(math.pi * t / n)) / 2)  # 10 x 0.1, no warmup


def test_per_group_cyclic_bounds_equal_torchs_cycliclr_with_lists(tmp_path: Path) -> None:
    """torch ``CyclicLR(base_lr=[...], max_lr=[...])``: each group cycles between its own bounds."""
    from torch.optim.lr_scheduler import CyclicLR

    from lrsched_pl.schedules import Cyclic

    bounds = {"pg1": (0.01, 0.1), "pg2": (0.001, 0.05)}
    values = [ScheduledValue("lr", Cyclic(min_lr=lo, max_lr=hi, step_size_up=3, mode="triangular2", cycle_momentum=False),
                             groups=(g,)) for g, (lo, hi) in bounds.items()]  # fmt: skip
    used = fit(tmp_path, ScheduleCallback(Constant(), values=values))
    ref = torch_lr_curve(
        lambda o: CyclicLR(o, base_lr=[0.01, 0.001], max_lr=[0.1, 0.05], step_size_up=3, mode="triangular2",
                           cycle_momentum=False), STEPS, (0.1, 0.02))  # fmt: skip
    for k in range(STEPS):
        assert [math.isclose(used.steps[k][g]["lr"], ref[k][g], rel_tol=1e-9) for g in range(2)] == [True, True], k


def test_a_run_with_scheduled_weight_decay_and_momentum_gets_their_custom_scalar_charts(compose, tmp_path: Path) -> None:
    import re

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    from lrsched_pl.run import train

    train(compose("trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.enable_progress_bar=false",
                  "optimizer.weight_decay=0.01", "wd_schedule=cosine", "schedule=onecycle"))  # fmt: skip
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    (event,) = acc.Tensors(metadata.CONFIG_SUMMARY_TAG)
    (category,) = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0]).category
    charts = {chart.title: chart.multiline.tag[0] for chart in category.chart}
    tags = set(acc.Tags()["scalars"])
    for title, tag in (("weight decay", "lr-SGD-weight_decay"), ("momentum", "lr-SGD-momentum")):
        assert tag in tags and re.match(charts[title], tag) and not re.match(charts["learning rate"], tag)


def test_a_momentum_cycling_segment_in_the_middle_of_a_sequence_cycles_it_there(tmp_path: Path) -> None:
    """[constant, onecycle over 5 steps, constant]: torch's ``OneCycleLR`` momentum in the middle, the configured
    momentum (0.9) outside it (a check of the run's first and last step alone would miss the segment)."""
    from torch.optim.lr_scheduler import OneCycleLR

    from lrsched_pl import OneCycle, Sequence

    class WithMomentum(TinyModule):
        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    used = Used()
    callback = ScheduleCallback(Sequence((Constant(), OneCycle(total=5), Constant()), boundaries=(3, 8)), interval="step")
    make_trainer(tmp_path, [callback, used], max_epochs=1, logger=False).fit(WithMomentum(n_batches=12))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    sched, ref = OneCycleLR(opt, max_lr=0.1, total_steps=5), []
    for _ in range(5):
        ref.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    expected = [0.9] * 3 + ref + [0.9] * 4
    assert [math.isclose(s[0]["momentum"], m, rel_tol=1e-12) for s, m in zip(used.steps.values(), expected)] == [True] * 12
