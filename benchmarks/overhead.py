"""Per-step overhead of ScheduleCallback, measured as Lightning calls it (issue #6, part 1).

    python -m benchmarks.overhead        # ~1 minute; writes benchmarks/results/overhead.md

Set-up: for 1, 10 and 100 param groups, a real ``lightning.Trainer`` (CPU, no logger) fits a tiny module for one
optimizer step with every ScheduleCallback under test attached (a helper callback sets ``trainer.should_stop``
after the first batch; ``max_steps`` is 10**7, so ``estimated_stepping_batches`` and every bound schedule see a
10**7-step run). The trainer is then kept: each callback's state is exactly what ``on_train_start`` left, and
``trainer.global_step`` reads the real progress counter, which the timed loop advances before every call
(``fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step.total.completed``, what
``global_step`` reads under automatic optimization in Lightning 2.6), so every call applies a new step.

Timed: ``callback.on_train_batch_end(trainer, module, outputs, batch, batch_idx)`` and, for reference on their
own optimizers with the same groups, a raw write of one float into every group, torch ``StepLR.step()``,
``LambdaLR.step()`` and ``OneCycleLR.step()``, at steps 10..10+CALLS and 10**6..10**6+CALLS. One sample is
``CALLS`` back-to-back calls; every round takes one sample of every variant (all group counts, both step
ranges) in a fresh random order, with the garbage collector off. The same loop around a call that does nothing
is measured too, and subtracted per round: the figures are the cost of the call itself.

Also timed, with one group: the six callback hooks of one training step dispatched by Lightning's own
``_call_callback_hooks`` to a Trainer holding no callback, a bare ``Callback`` or a ScheduleCallback (the whole
per-step price of attaching the callback), and the pieces of a call (``trainer.global_step``, ``state_key``,
``affine``, ...), to say where the time goes.
"""

from __future__ import annotations

import functools
import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer import call as lightning_call
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, OneCycleLR, StepLR
from torch.utils.data import DataLoader, TensorDataset

import lrsched_pl.schedules as schedules
from benchmarks._common import median, quartiles, quiet_lightning, table, verdict, write_results
from lrsched_pl.callback import ScheduleCallback
from lrsched_pl.plateau import ReducePlateau
from lrsched_pl.schedules import Constant, CosineDecay, StepDecay, TimeBasedDecay
from lrsched_pl.values import ScheduledValue

THREE = "torch LR+WD+momentum: 3 schedulers"
GROUPS = (1, 10, 100)
STARTS = {"10": 10, "1e6": 10**6}
COLUMNS = [(n, label) for n in GROUPS for label in STARTS]
CALLS = 2000
ROUNDS = 31
RUN_STEPS = 10**7
LR0 = 0.1

quiet_lightning()


class GroupsModule(pl.LightningModule):
    """``n`` linear layers, each in its own param group of an SGD optimizer (momentum 0.9)."""

    def __init__(self, n: int, step_lr: bool = False) -> None:
        super().__init__()
        self.step_lr = step_lr
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 1) for _ in range(n))
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(sum(layer(x) for layer in self.layers), y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8)

    def configure_optimizers(self) -> Any:
        opt = sgd_groups(self.layers)
        if not self.step_lr:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": StepLR(opt, step_size=10, gamma=0.5), "interval": "step"}}


def sgd_groups(layers: torch.nn.ModuleList) -> torch.optim.SGD:
    return torch.optim.SGD(
        [{"params": layer.parameters(), "lr": LR0} for layer in layers], lr=LR0, momentum=0.9, weight_decay=1e-4
    )


class ThreeSchedulers:
    """What torch needs to schedule LR, weight decay and momentum: three schedulers, two on shadow optimizers
    whose ``lr`` plays the weight decay and the momentum (torch's schedulers write only ``lr``), copied over."""

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        self.opt, n = opt, len(opt.param_groups)
        self.lr = CosineAnnealingLR(opt, T_max=RUN_STEPS)
        self.shadows = [sgd_groups(GroupsModule(n).layers) for _ in range(2)]
        for shadow, start in zip(self.shadows, (0.04, 0.85)):
            for g in shadow.param_groups:
                g["lr"] = g["initial_lr"] = start
        self.wd = CosineAnnealingLR(self.shadows[0], T_max=RUN_STEPS, eta_min=0.4)
        self.momentum = CosineAnnealingLR(self.shadows[1], T_max=RUN_STEPS, eta_min=0.99)
        for shadow in self.shadows:
            shadow.step()

    def step(self) -> None:
        self.lr.step()
        self.wd.step()
        self.momentum.step()
        for g, w, m in zip(self.opt.param_groups, self.shadows[0].param_groups, self.shadows[1].param_groups):
            g["weight_decay"] = w["lr"]
            g["momentum"] = m["lr"]

    def reset(self, start: int) -> None:
        for sched, value in ((self.lr, LR0), (self.wd, 0.04), (self.momentum, 0.85)):
            for g in sched.optimizer.param_groups:
                g["lr"] = value
            sched.last_epoch = start - 1


class StopAfterFirstStep(pl.Callback):
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        trainer.should_stop = True


def callbacks_under_test() -> dict[str, ScheduleCallback]:
    """Display name -> a fresh callback. OneCycle is included when ``lrsched_pl.schedules`` has it."""
    cbs: dict[str, ScheduleCallback] = {
        "callback StepDecay": ScheduleCallback(StepDecay(step_size=10, gamma=0.5), interval="step"),
        "callback TimeBasedDecay": ScheduleCallback(TimeBasedDecay(decay=0.01), interval="step"),
        "callback CosineDecay": ScheduleCallback(CosineDecay(), interval="step"),
        "callback plateau": ScheduleCallback(Constant(), interval="step", plateau=ReducePlateau()),
    }
    one_cycle = getattr(schedules, "OneCycle", None)
    if one_cycle is not None:
        cbs["callback OneCycle"] = ScheduleCallback(one_cycle(), interval="step")
    cbs["callback LR+WD+momentum"] = ScheduleCallback(
        CosineDecay(),
        interval="step",
        values=[
            ScheduledValue("weight_decay", CosineDecay(min_lr=0.4), start=0.04),
            ScheduledValue("momentum", CosineDecay(min_lr=0.99), start=0.85),
        ],
    )
    cbs["callback StepDecay, interval=epoch"] = ScheduleCallback(StepDecay(step_size=10, gamma=0.5), interval="epoch")
    return cbs


@dataclass
class Variant:
    """One timed thing: ``call()`` repeated, after ``reset(start)`` puts it at step ``start``."""

    name: str
    groups: int
    call: Callable[[], Any]
    reset: Callable[[int], None]
    progress: Any  # the trainer's optimizer-step counter, advanced before every call
    check: Callable[[int], None] | None = None  # verifies, after a sample ending at step t, that it did its work
    calls: int = CALLS  # calls per sample


def noop(*args: Any) -> None:
    return None


def fit_one_step(n: int, callbacks: list[pl.Callback], step_lr: bool = False) -> tuple[pl.Trainer, GroupsModule]:
    """A real Trainer that has fitted one optimizer step of an ``n``-group module, kept for timing."""
    module = GroupsModule(n, step_lr)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=RUN_STEPS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[*callbacks, StopAfterFirstStep()],
    )
    trainer.fit(module)
    assert trainer.global_step == 1 and trainer.estimated_stepping_batches == RUN_STEPS
    return trainer, module


def step_counter(trainer: pl.Trainer) -> Any:
    """The progress record whose ``completed`` ``trainer.global_step`` returns (automatic optimization)."""
    return trainer.fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step.total


def build(n: int) -> tuple[list[Variant], list[str]]:
    """For ``n`` groups: every callback after one real fitted step (one Trainer each), and the references."""
    cbs = callbacks_under_test()
    trainer, module = fit_one_step(n, [])
    progress = step_counter(trainer)
    outputs = {"loss": torch.tensor(0.5)}
    batch = (module.x[:8], module.y[:8])

    def no_reset(start: int) -> None:
        pass

    floor_call = functools.partial(noop, trainer, module, outputs, batch, 0)
    variants = [Variant("no-op call (subtracted)", n, floor_call, no_reset, progress)]
    groups = trainer.optimizers[0].param_groups

    def raw_write() -> None:
        for g in groups:
            g["lr"] = 0.05

    variants.append(Variant("raw write", n, raw_write, no_reset, progress))

    references: dict[str, Callable[[torch.optim.Optimizer], Any]] = {
        "torch StepLR.step()": lambda opt: StepLR(opt, step_size=10, gamma=0.5),
        "torch LambdaLR.step()": lambda opt: LambdaLR(opt, lambda t: 0.5 ** (t // 10)),
        "torch OneCycleLR.step()": lambda opt: OneCycleLR(opt, max_lr=LR0, total_steps=RUN_STEPS),
    }
    for name, make in references.items():
        opt = sgd_groups(GroupsModule(n).layers)
        sched = make(opt)
        opt.step()  # the order torch expects, so that no warning is timed

        def reset(start: int, sched: Any = sched, opt: torch.optim.Optimizer = opt) -> None:
            for g in opt.param_groups:  # StepLR is chainable: keep its LR away from underflow
                g["lr"] = LR0
            sched.last_epoch = start - 1

        variants.append(Variant(name, n, sched.step, reset, progress))
    three = ThreeSchedulers(sgd_groups(GroupsModule(n).layers))
    three.opt.step()
    variants.append(Variant(THREE, n, three.step, three.reset, progress))

    for name, cb in cbs.items():
        cb_trainer, cb_module = fit_one_step(n, [cb])
        cb_groups = cb_trainer.optimizers[0].param_groups

        def check(last: int, cb: ScheduleCallback = cb, cb_groups: list[dict[str, Any]] = cb_groups) -> None:
            if cb.interval == "step":
                assert cb._step_t == last, (cb, cb._step_t, last)
                lr = cb.bound(last, LR0)
                lr = cb.plateau.apply(lr) if cb.plateau is not None else lr
                assert cb_groups[-1]["lr"] == lr, (cb, cb_groups[-1]["lr"], lr)

        call = functools.partial(cb.on_train_batch_end, cb_trainer, cb_module, outputs, batch, 0)
        variants.append(Variant(name, n, call, no_reset, step_counter(cb_trainer), check))

    if n > 1:
        return variants, list(cbs)
    variants += dispatch_variants(outputs, batch)

    step_decay = cbs["callback StepDecay"].bound
    variants += [
        Variant("part: trainer.global_step", n, lambda: trainer.global_step, no_reset, progress),
        Variant("part: trainer.optimizers", n, lambda: trainer.optimizers, no_reset, progress),
        Variant("part: StepDecay.affine(t)", n, lambda: step_decay.affine(12345), no_reset, progress),
        Variant("part: StepDecay.momentum(t)", n, lambda: step_decay.momentum(12345), no_reset, progress),
    ]
    if "callback OneCycle" in cbs:
        one_cycle = cbs["callback OneCycle"].bound
        variants += [
            Variant("part: OneCycle.affine(t)", n, lambda: one_cycle.affine(12345), no_reset, progress),
            Variant("part: OneCycle.momentum(t)", n, lambda: one_cycle.momentum(12345), no_reset, progress),
        ]
    return variants, list(cbs)


DISPATCHED = {
    "Lightning dispatch, callbacks=[]": lambda: None,
    "Lightning dispatch, callbacks=[Callback()]": pl.Callback,
    "Lightning dispatch, callbacks=[ScheduleCallback StepDecay]": lambda: ScheduleCallback(
        StepDecay(step_size=10, gamma=0.5), interval="step"
    ),
}


LIGHTNING_SCHEDULER = ("Lightning scheduler update, no scheduler", "Lightning scheduler update, StepLR interval=step")


def dispatch_variants(outputs: Any, batch: Any) -> list[Variant]:
    """One training step's six callback hooks, dispatched by Lightning's own ``_call_callback_hooks`` (what the
    training loop calls: it also evaluates each callback's ``state_key`` and enters the profiler), on a fitted
    one-group Trainer whose callback list is then set to nothing, a bare ``Callback``, or the callback."""
    variants = []
    for name, make in DISPATCHED.items():
        cb = make()
        trainer, module = fit_one_step(1, [cb] if cb is not None else [])
        trainer.callbacks = [cb] if cb is not None else []
        opt = trainer.optimizers[0]
        hooks = (
            ("on_train_batch_start", (batch, 0)),
            ("on_before_backward", (outputs["loss"],)),
            ("on_after_backward", ()),
            ("on_before_optimizer_step", (opt,)),
            ("on_before_zero_grad", (opt,)),
            ("on_train_batch_end", (outputs, batch, 0)),
        )

        def one_step(trainer: pl.Trainer = trainer, hooks: tuple[tuple[str, tuple[Any, ...]], ...] = hooks) -> None:
            for hook, args in hooks:
                lightning_call._call_callback_hooks(trainer, hook, *args)

        def check(last: int, cb: Any = cb) -> None:
            if isinstance(cb, ScheduleCallback):
                assert cb._step_t == last, (cb, cb._step_t, last)

        variants.append(Variant(name, 1, one_step, lambda start: None, step_counter(trainer), check, CALLS // 4))

    # what Lightning does per step for a scheduler returned by configure_optimizers (variant C of end_to_end)
    for name, step_lr in zip(LIGHTNING_SCHEDULER, (False, True)):
        lt_trainer, _ = fit_one_step(1, [], step_lr=step_lr)
        assert len(lt_trainer.lr_scheduler_configs) == int(step_lr)
        update = functools.partial(lt_trainer.fit_loop.epoch_loop.update_lr_schedulers, "step", False)

        def reset_lr(start: int, lt_trainer: pl.Trainer = lt_trainer) -> None:
            for g in lt_trainer.optimizers[0].param_groups:  # StepLR is chainable: keep its LR away from underflow
                g["lr"] = LR0

        variants.append(Variant(name, 1, update, reset_lr, step_counter(lt_trainer), calls=CALLS // 2))

    # the pieces of one dispatch, on the last of those trainers
    schedule_cb = ScheduleCallback(StepDecay(), interval="step")
    bare_cb = pl.Callback()
    profiler = trainer.profiler
    module = trainer.lightning_module

    def profiled() -> None:
        with profiler.profile("[Callback]ScheduleCallback.on_after_backward"):
            pass

    def set_fx_name() -> None:
        module._current_fx_name = "on_after_backward"

    progress = step_counter(trainer)
    variants += [
        Variant("part: ScheduleCallback.state_key", 1, lambda: schedule_cb.state_key, lambda start: None, progress),
        Variant("part: Callback.state_key (bare)", 1, lambda: bare_cb.state_key, lambda start: None, progress),
        Variant("part: enter+exit trainer.profiler.profile()", 1, profiled, lambda start: None, progress),
        Variant("part: module._current_fx_name = ...", 1, set_fx_name, lambda start: None, progress),
    ]
    return variants


def sample(v: Variant, start: int) -> float:
    """Nanoseconds per call over ``v.calls`` calls from step ``start``."""
    v.reset(start)
    call, progress = v.call, v.progress
    t0 = time.perf_counter_ns()
    for step in range(start, start + v.calls):
        progress.completed = step
        call()
    elapsed = time.perf_counter_ns() - t0
    if v.check is not None:
        v.check(start + v.calls - 1)
    return elapsed / v.calls


def measure(variants: list[Variant]) -> dict[tuple[str, int, str], list[float]]:
    """(name, groups, start label) -> net ns per call, one value per round (no-op of the same round subtracted)."""
    jobs = [(v, label, start) for v in variants for label, start in STARTS.items()]
    rng = random.Random(6)
    gross: dict[tuple[str, int, str], list[float]] = {}
    for job in jobs:  # warm-up round, not recorded
        sample(job[0], job[2])
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            rng.shuffle(jobs)
            for v, label, start in jobs:
                gross.setdefault((v.name, v.groups, label), []).append(sample(v, start))
    finally:
        gc.enable()
    net: dict[tuple[str, int, str], list[float]] = {}
    for (name, n, label), values in gross.items():
        floor = gross[("no-op call (subtracted)", n, label)]
        net[(name, n, label)] = values if name.startswith("no-op") else [a - b for a, b in zip(values, floor)]
    return net


def us(ns: float) -> str:
    return f"{ns / 1000:.3f}"


def ratio(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Median and interquartile range of the per-round ratios x/y."""
    rs = [x / y for x, y in zip(xs, ys)]
    lo, hi = quartiles(rs)
    return median(rs), lo, hi


def fmt_ratio(r: tuple[float, float, float]) -> str:
    return f"{r[0]:.2f} ({r[1]:.2f}–{r[2]:.2f})"


def report(
    net: dict[tuple[str, int, str], list[float]], names: list[str], cb_names: list[str]
) -> tuple[str, str]:
    scheduled = [c for c in cb_names if c.startswith("callback") and "epoch" not in c and "+" not in c]
    parts: list[str] = []

    # --- per-call medians
    dispatch = [name for name in names if name in DISPATCHED]
    names = [name for name in names if name not in DISPATCHED and name not in LIGHTNING_SCHEDULER]
    rows = []
    for name in names:
        cells = [us(median(net[(name, n, label)])) if (name, n, label) in net else "–" for n, label in COLUMNS]
        rows.append([name, *cells])
    header = ["variant (µs per call)"] + [f"{n} group{'s' if n > 1 else ''}, step ~{label}" for n, label in COLUMNS]
    parts.append("## Median cost per call, µs\n\n" + table(header, rows))

    # --- the whole per-step cost, through Lightning's dispatch
    base = {label: net[(dispatch[0], 1, label)] for label in STARTS}
    rows = []
    for name in dispatch:
        cells = []
        for label in STARTS:
            added = [x - y for x, y in zip(net[(name, 1, label)], base[label])]
            cells += [us(median(net[(name, 1, label)])), us(median(added)) if name != dispatch[0] else "–"]
        rows.append([name.removeprefix("Lightning dispatch, ")] + cells)
    parts.append(
        "## The callback's whole cost per training step, as Lightning dispatches it (one group)\n\n"
        "One step's six callback hooks (`on_train_batch_start`, `on_before_backward`, `on_after_backward`, "
        "`on_before_optimizer_step`, `on_before_zero_grad`, `on_train_batch_end`) through Lightning's own "
        "`_call_callback_hooks`, which evaluates `callback.state_key` and enters the profiler (a pass-through "
        "here) for every hook; on a fitted Trainer whose callback list holds nothing, a bare `Callback`, or the "
        "callback. `added` is the per-round difference to the empty list: what having the callback costs per "
        "optimizer step, all included.\n\n"
        + table(
            ["Trainer.callbacks"] + [f"{col}, step ~{label} (µs)" for label in STARTS for col in ("6 hooks", "added")],
            rows,
        )
    )

    none, step_lr = LIGHTNING_SCHEDULER
    rows = []
    for label in STARTS:
        added_c = [x - y for x, y in zip(net[(step_lr, 1, label)], net[(none, 1, label)])]
        added_a = [x - y for x, y in zip(net[(dispatch[2], 1, label)], base[label])]
        rows.append([
            f"~{label}", us(median(net[(none, 1, label)])), us(median(net[(step_lr, 1, label)])),
            us(median(added_c)), us(median(added_a)), us(median([a - c for a, c in zip(added_a, added_c)])),
        ])
    parts.append(
        "## Against Lightning stepping the same schedule itself (variant C of the end-to-end benchmark)\n\n"
        "`fit_loop.epoch_loop.update_lr_schedulers(\"step\", False)`, which the training loop calls after every "
        "batch, on a fitted one-group Trainer whose `configure_optimizers` returned no scheduler or a torch `StepLR` "
        "with `interval=\"step\"`; the difference is what Lightning's own scheduling costs per step (its "
        "`lr_scheduler_step` hook dispatch and `StepLR.step()`). Compared, per round, with the callback's `added` "
        "above.\n\n"
        + table(
            ["step", "update, no scheduler (µs)", "update, StepLR (µs)", "C: added by StepLR (µs)",
             "A: added by ScheduleCallback (µs)", "A − C per step (µs)"],
            rows,
        )
    )

    # --- target 1: callback <= 0.5 x StepLR.step(), one group
    rows, ok1 = [], True
    for name in scheduled:
        r = ratio(net[(name, 1, "10")], net[("torch StepLR.step()", 1, "10")])
        ok1 &= r[0] <= 0.5
        rows.append([name, fmt_ratio(r), verdict(r[0] <= 0.5)])
    parts.append(
        "## Target: callback ≤ 0.5 × `StepLR.step()` (one group, step ~10)\n\n"
        "Median of the per-round ratios (interquartile range).\n\n"
        + table(["callback", "callback / StepLR.step()", "target ≤ 0.5"], rows)
        + f"\n\nOverall: {verdict(ok1)}."
    )

    # --- issue #12: one value keeps its cost; each extra value at most the LR's; against torch's three schedulers
    one = ratio(net[("callback StepDecay", 1, "10")], net[("torch StepLR.step()", 1, "10")])
    ok5 = one[0] <= 0.55
    lr_only, three_values = "callback CosineDecay", "callback LR+WD+momentum"
    slope = {name: (median(net[(name, 100, "10")]) - median(net[(name, 1, "10")])) / 99 for name in (lr_only, three_values)}
    extra = (slope[three_values] - slope[lr_only]) / 2
    ok6 = extra <= slope[lr_only] * 1.1  # 10% for the noise of two slopes
    rows = [[f"{n} group{'s' if n > 1 else ''}", us(median(net[(three_values, n, "10")])), us(median(net[(THREE, n, "10")])),
             fmt_ratio(ratio(net[(three_values, n, "10")], net[(THREE, n, "10")]))] for n in GROUPS]  # fmt: skip
    parts.append(
        "## Issue #12: scheduled values beyond the LR (step ~10)\n\n"
        f"- One scheduled value (`callback StepDecay`) / `StepLR.step()`, one group: {fmt_ratio(one)} — target "
        f"≤ 0.55: {verdict(ok5)}.\n"
        f"- Cost per extra group of the LR alone (`{lr_only}`): {slope[lr_only]:.1f} ns; of LR + weight decay + "
        f"momentum: {slope[three_values]:.1f} ns, so each extra value adds {extra:.1f} ns per group — target: no "
        f"more than the LR's own per-group cost (+10% for the noise of two slopes): {verdict(ok6)}.\n"
        "- LR + weight decay + momentum on cosine schedules, the callback against torch doing the same with three "
        "`CosineAnnealingLR`s (two on shadow optimizers whose `lr` is copied into `weight_decay` and `momentum`, "
        "since torch's schedulers write only `lr`):\n\n"
        + table(["groups", "callback (µs)", "torch, 3 schedulers (µs)", "callback / torch"], rows)
    )

    # --- target 2: flat in step count
    rows, ok2 = [], True
    for name in names:
        if name.startswith(("no-op", "part:")) or "interval=epoch" in name:
            continue  # near-zero costs: their ratio is noise
        cells = []
        for n in GROUPS:
            r = ratio(net[(name, n, "1e6")], net[(name, n, "10")])
            cells.append(fmt_ratio(r))
            if name in scheduled:
                ok2 &= 0.9 <= r[0] <= 1.1
        rows.append([name] + cells)
    parts.append(
        "## Target: flat in step count (step ~10**6 / step ~10 ≈ 1, i.e. within 0.9–1.1)\n\n"
        + table(["variant"] + [f"{n} group{'s' if n > 1 else ''}" for n in GROUPS], rows)
        + f"\n\nOverall (the scheduling callbacks): {verdict(ok2)}."
    )

    # --- target 3: linear in groups
    rows, ok3 = [], True
    references = ["raw write", "torch StepLR.step()", "torch LambdaLR.step()"]
    for name in [*scheduled, *references]:
        c = {n: median(net[(name, n, "10")]) for n in GROUPS}
        slope = (c[100] - c[1]) / 99
        predicted = c[1] + slope * 9
        devs = [  # per round and step range: the 10-group sample against the line through that round's 1 and 100
            m / (a + (z - a) * 9 / 99) - 1
            for label in STARTS
            for a, m, z in zip(*(net[(name, n, label)] for n in GROUPS))
        ]
        dev = median(devs)
        lo, hi = quartiles(devs)
        ok = abs(dev) <= 0.15
        if name in scheduled:
            ok3 &= ok
        target = verdict(ok) if name in scheduled else ""
        rows.append([name, us(c[1]), f"{slope:.1f}", us(c[10]), us(predicted), f"{dev:+.0%} ({lo:+.0%}…{hi:+.0%})",
                     target])
    parts.append(
        "## Target: linear in groups (cost = a + b · groups)\n\n"
        "a and b from the 1- and 100-group medians (step ~10). Deviation: per round and step range, the 10-group "
        "sample against the line through the same round's 1- and 100-group samples; its median (interquartile "
        "range) must lie within ±15%.\n\n"
        + table(
            ["variant", "a ≈ 1 group (µs)", "b (ns per group)", "10 groups measured (µs)", "line at 10 (µs)",
             "deviation", "target"],
            rows,
        )
        + f"\n\nOverall: {verdict(ok3)}."
    )

    # --- target 4: within 3x of the raw write
    rows, ok4 = [], True
    for name in scheduled:
        cells = []
        for n in GROUPS:
            r = ratio(net[(name, n, "10")], net[("raw write", n, "10")])
            cells.append(fmt_ratio(r))
            if name in scheduled:
                ok4 &= r[0] <= 3.0
        c = {n: median(net[(name, n, "10")]) for n in GROUPS}
        raw = {n: median(net[("raw write", n, "10")]) for n in GROUPS}
        cells.append(f"{(c[100] - c[1]) / (raw[100] - raw[1]):.2f}")
        rows.append([name] + cells)
    parts.append(
        "## Target: within 3× of the raw write (`for g in opt.param_groups: g[\"lr\"] = v`), step ~10\n\n"
        + table(
            ["variant"] + [f"{n} group{'s' if n > 1 else ''}" for n in GROUPS] + ["per extra group (1 → 100)"], rows
        )
        + "\n\nThe last column divides the callback's cost per additional group by the raw write's (the slopes "
        "b of the table above): the part of the target that a fixed per-call cost cannot affect."
        + f"\n\nOverall: {verdict(ok4)}."
    )

    # --- where the time goes
    parts.append(
        "## Where a one-group call goes (step ~10, µs)\n\n"
        + table(
            ["part", "µs"],
            [[name[len("part: "):], us(median(net[(name, 1, "10")]))] for name in names if name.startswith("part:")]
            + [[f"whole {name} call", us(median(net[(name, 1, "10")]))]
               for name in ("callback StepDecay", "callback OneCycle") if name in names],
        )
        + "\n\n`ScheduleCallback.on_train_batch_end` reads `trainer.global_step` once to compare and `_apply` reads it "
        "again (`_time`), then `trainer.optimizers`, evaluates `affine(t)` once and walks the groups with two "
        "`zip`s. The parts are timed through a lambda, net of the no-op call (a `partial` with five arguments, a "
        "little dearer than an empty lambda: hence ~0 or slightly negative for the trivial `momentum`)."
    )

    summary = table(
        ["target", "result"],
        [
            ["callback ≤ 0.5 × StepLR.step(), one group", verdict(ok1)],
            ["flat in step count (10**6 vs 10)", verdict(ok2)],
            ["linear in groups", verdict(ok3)],
            ["within 3× of the raw write", verdict(ok4)],
            ["#12: one scheduled value ≤ 0.55 × StepLR.step(), one group", verdict(ok5)],
            ["#12: each extra scheduled value ≤ the LR's own per-group cost", verdict(ok6)],
        ],
    )
    return summary, "\n\n".join(parts)


def main() -> None:
    t0 = time.perf_counter()
    variants: list[Variant] = []
    cb_names: list[str] = []
    for n in GROUPS:
        vs, cb_names = build(n)
        variants += vs
    names = list(dict.fromkeys(v.name for v in variants))
    net = measure(variants)
    summary, body = report(net, names, cb_names)
    one_cycle = "included"
    if getattr(schedules, "OneCycle", None) is None:
        one_cycle = "absent from `lrsched_pl.schedules` when this ran, not measured"
    method = (
        f"Method: {ROUNDS} rounds; each round times one sample of every variant × group count × step range in a "
        f"fresh random order; a sample is {CALLS} calls timed with `time.perf_counter_ns` (garbage collector off), "
        "with `trainer.global_step` advanced before every call. Per round the same loop around a no-op call is "
        "subtracted. Figures are medians over rounds; ratios are medians of the per-round ratios with their "
        "interquartile range. Callbacks: `interval=\"step\"` unless noted; `plateau` is `Constant` + "
        "`ReducePlateau` (what `schedule=plateau schedule.interval=step` builds), which per step only applies its "
        f"scale; OneCycle: {one_cycle}. `interval=epoch` shows the per-step cost of a callback with nothing to do. "
        f"Wall time of this run: {time.perf_counter() - t0:.0f} s."
    )
    text = f"{method}\n\n## Summary\n\n{summary}\n\n{body}"
    path = write_results("overhead", "Per-step overhead of ScheduleCallback", text)
    print(path.read_text())


if __name__ == "__main__":
    main()
