"""The shapes the peers have: each compared step by step with its reference over a whole run.

References: torch's schedulers stepped on a dummy two-group optimizer (``ExponentialLR`` and ``StepLR`` with
``gamma > 1``, ``ChainedScheduler``, ``CosineAnnealingLR``); optax's schedules (``exponential_decay`` with
``end_value``, ``linear_schedule``, ``cosine_decay_schedule`` with ``exponent``, ``sgdr_schedule``) transcribed from
``optax/schedules/_schedule.py`` and ``_join.py``; HuggingFace's ``warmup_type`` (``_get_wsd_scheduler_lambda`` in
``transformers/optimization.py``, written out once in ``conftest.hf_wsd``). Then the config layer: every new key
composes and reaches the schedule, bad values are refused naming the key, and the preview draws the new option.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from conftest import assert_curves_close, hf_wsd, torch_lr_curve

from lrsched_pl.compose import Product, Sequence, Warmup
from lrsched_pl.config import build_schedule
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.schedules import (
    Constant,
    CosineDecay,
    CosineRestarts,
    Cyclic,
    ExponentialDecay,
    LinearDecay,
    MultiStepDecay,
    Schedule,
    StepDecay,
    WarmupStableDecay,
)

GROUP_LRS = (0.1, 0.03)
RUN = 200


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def torch_curve(make: Callable[[torch.optim.Optimizer], object], n: int = RUN) -> list[list[float]]:
    """Each group's LR at t = 0 .. n - 1 under a torch scheduler (:func:`conftest.torch_lr_curve`)."""
    return torch_lr_curve(make, n, GROUP_LRS)


def formula_curve(lr_at: Callable[[int, float], float], n: int = RUN) -> list[list[float]]:
    return [[lr_at(t, lr0) for lr0 in GROUP_LRS] for t in range(n)]


def our_curve(schedule: Schedule, n: int = RUN) -> list[list[float]]:
    return [[schedule(t, lr0) for lr0 in GROUP_LRS] for t in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# optax, transcribed from optax/schedules/_schedule.py and _join.py
# ---------------------------------------------------------------------------------------------------------------


def optax_exponential_decay(init_value, transition_steps, decay_rate, staircase=False, end_value=None):
    """optax.exponential_decay (transition_begin=0): ``end_value`` a floor when decay_rate < 1, else a ceiling."""

    def schedule(count):
        p = count / transition_steps
        if staircase:
            p = math.floor(p)
        value = init_value if count <= 0 else init_value * decay_rate**p
        if end_value is not None:
            value = max(value, end_value) if decay_rate < 1.0 else min(value, end_value)
        return value

    return schedule


def optax_linear_schedule(init_value, end_value, transition_steps):
    """optax.linear_schedule = polynomial_schedule(power=1)."""

    def schedule(count):
        count = min(max(count, 0), transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * frac**1 + end_value

    return schedule


def optax_cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    def schedule(count):
        count = min(float(count), float(decay_steps))
        cosine_decay = 0.5 * (1 + math.cos(math.pi * count / decay_steps))
        return init_value * ((1 - alpha) * cosine_decay**exponent + alpha)

    return schedule


def optax_join_schedules(schedules, boundaries):
    def schedule(step):
        output = schedules[0](step)
        for boundary, s in zip(boundaries, schedules[1:]):
            output = output if step < boundary else s(step - boundary)
        return output

    return schedule


def optax_warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0):
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return optax_join_schedules(
        [
            (lambda c: init_value)
            if warmup_steps <= 0  # polynomial_schedule with transition_steps <= 0 is constant
            else optax_linear_schedule(init_value, peak_value, warmup_steps),
            optax_cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def optax_sgdr_schedule(cosine_kwargs):
    boundaries, schedules, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(optax_warmup_cosine_decay_schedule(**kwargs))
        boundaries.append(step + kwargs["decay_steps"])
        step += kwargs["decay_steps"]
    return optax_join_schedules(schedules, boundaries[:-1])


# ---------------------------------------------------------------------------------------------------------------
# Growth and end_factor
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [1.01, 1.05])
def test_exponential_growth_matches_torch_exponentiallr(gamma):
    """With a ceiling far above the run's reach, growth is torch's ExponentialLR with gamma > 1."""
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma))
    assert_curves_close(our_curve(ExponentialDecay(gamma=gamma, end_factor=1e9)), ref)


@pytest.mark.parametrize(("step_size", "gamma"), [(7, 2.0), (30, 1.5)])
def test_step_growth_matches_torch_steplr(step_size, gamma):
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma))
    assert_curves_close(our_curve(StepDecay(step_size=step_size, gamma=gamma, end_factor=1e9)), ref)


@pytest.mark.parametrize(("gamma", "end_factor"), [(0.97, 0.2), (0.9, 1e-3), (1.03, 4.0), (2.0, 1.0), (1.0, 1.0)])
def test_exponential_end_factor_matches_optax_end_value(gamma, end_factor):
    for lr0 in GROUP_LRS:
        ref = optax_exponential_decay(lr0, 1, gamma, end_value=end_factor * lr0)
        ours = ExponentialDecay(gamma=gamma, end_factor=end_factor)
        for t in range(RUN):
            assert close(ours(t, lr0), ref(t)), t
    if gamma != 1.0:  # the bound is reached within the run
        assert math.isclose(ours(RUN - 1, 1.0), end_factor)


@pytest.mark.parametrize(("step_size", "gamma", "end_factor"), [(10, 0.5, 0.01), (3, 0.1, 0.5), (25, 3.0, 20.0)])
def test_step_end_factor_matches_optax_staircase_end_value(step_size, gamma, end_factor):
    for lr0 in GROUP_LRS:
        ref = optax_exponential_decay(lr0, step_size, gamma, staircase=True, end_value=end_factor * lr0)
        ours = StepDecay(step_size=step_size, gamma=gamma, end_factor=end_factor)
        for t in range(RUN):
            assert close(ours(t, lr0), ref(t)), t


def test_growth_reaches_its_ceiling_without_overflow():
    """Far past the point where gamma ** t leaves the floats, the factor is the ceiling."""
    assert ExponentialDecay(gamma=2.0, end_factor=8.0)(10**6, lr0=0.1) == pytest.approx(0.8)
    assert StepDecay(step_size=1, gamma=10.0, end_factor=5.0)(10**5, lr0=1.0) == 5.0


@pytest.mark.parametrize(("start_factor", "end_factor", "total"), [(1.0, 10.0, 50), (0.1, 3.0, RUN), (0.5, 1.5, 1)])
def test_linear_growth_matches_optax_linear_schedule(start_factor, end_factor, total):
    ours = LinearDecay(start_factor=start_factor, end_factor=end_factor, total=total)
    ref = formula_curve(lambda t, lr0: optax_linear_schedule(lr0 * start_factor, lr0 * end_factor, total)(t))
    assert_curves_close(our_curve(ours), ref)


@pytest.mark.parametrize(
    ("cls", "kwargs", "key"),
    [
        (ExponentialDecay, dict(gamma=1.1), "gamma"),  # growth without a ceiling would overflow
        (StepDecay, dict(gamma=2.0), "gamma"),
        (ExponentialDecay, dict(gamma=1.1, end_factor=0.5), "end_factor"),  # a ceiling below the start
        (ExponentialDecay, dict(gamma=0.9, end_factor=2.0), "end_factor"),  # a floor above the start
        (ExponentialDecay, dict(gamma=0.9, end_factor=0.0), "end_factor"),
        (StepDecay, dict(gamma=0.0, end_factor=0.1), "gamma"),
        (StepDecay, dict(gamma=0.5, end_factor=math.nan), "end_factor"),
        (LinearDecay, dict(end_factor=math.inf), "end_factor"),
        (CosineDecay, dict(exponent=0.0), "exponent"),
        (CosineDecay, dict(exponent=-1.0), "exponent"),
    ],
)
def test_bad_growth_and_shape_keys_are_refused(cls, kwargs, key):
    with pytest.raises(ConfigValueError) as info:
        cls(**kwargs)
    assert info.value.key == key


# ---------------------------------------------------------------------------------------------------------------
# Cosine with an exponent; cosine past total
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("exponent", "min_lr", "total"), [(2.0, 0.0, 150), (0.5, 0.01, 150), (3.0, 0.001, 37)])
def test_cosine_exponent_matches_optax_cosine_decay_schedule(exponent, min_lr, total):
    ours = CosineDecay(min_lr=min_lr, total=total, exponent=exponent)
    ref = formula_curve(lambda t, lr0: optax_cosine_decay_schedule(lr0, total, min_lr / lr0, exponent)(t))
    assert_curves_close(our_curve(ours), ref)


def test_cosine_holds_min_lr_past_total_where_torch_climbs_back():
    """The documented difference: torch's CosineAnnealingLR is periodic (back to lr0 at 2T); ours holds min_lr."""
    total, min_lr = 40, 0.001
    make = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=min_lr)  # noqa: E731
    ref = torch_curve(make, 2 * total + 1)
    ours = our_curve(CosineDecay(min_lr=min_lr, total=total), 2 * total + 1)
    assert_curves_close(ours[: total + 1], ref[: total + 1])  # equal up to T
    assert all(close(lr, min_lr) for row in ours[total:] for lr in row)  # then held
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(ref[2 * total], GROUP_LRS))  # torch is back at lr0


# ---------------------------------------------------------------------------------------------------------------
# Warmup shapes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(("warmup", "decay", "ratio"), [(20, 40, 0.0), (37, 100, 0.1), (1, 10, 0.0)])
def test_warmup_shapes_match_huggingface_warmup_type(shape, warmup, decay, ratio):
    """Warmup(wsd, W, shape) over N steps is get_wsd_schedule(W, D, N, warmup_type=shape, min_lr_ratio)."""
    lr0 = GROUP_LRS[0]
    ours = Warmup(WarmupStableDecay(decay=decay, min_lr=ratio * lr0), warmup, ratio, shape).bind(RUN)
    for t in range(RUN):
        ref = lr0 * hf_wsd(
            t, num_warmup_steps=warmup, num_stable_steps=RUN - warmup - decay, num_decay_steps=decay,
            warmup_type=shape, decay_type="cosine", min_lr_ratio=ratio,
        )  # fmt: skip
        assert close(ours(t, lr0), ref), t


@pytest.mark.parametrize(("warmup", "start"), [(10, 0.01), (50, 0.1), (1, 0.5)])
def test_exponential_warmup_is_optax_exponential_growth(warmup, start):
    """A geometric ramp from start * lr0: optax.exponential_decay(start * lr0, W, 1 / start) over the warmup."""
    ours = Warmup(CosineDecay(), warmup, start, "exponential").bind(RUN)
    for lr0 in GROUP_LRS:
        ref = optax_exponential_decay(start * lr0, warmup, 1.0 / start)
        for t in range(warmup):
            assert close(ours(t, lr0), ref(t)), t
        assert close(ours(warmup, lr0), lr0)  # the schedule takes over at lr0


def test_exponential_warmup_needs_a_start_above_zero():
    with pytest.raises(ConfigValueError) as info:
        Warmup(Constant(), 10, 0.0, "exponential")
    assert info.value.key == "warmup_start_factor"
    with pytest.raises(ConfigValueError) as info:
        Warmup(Constant(), 10, 0.0, "quadratic")
    assert info.value.key == "warmup_shape"


# ---------------------------------------------------------------------------------------------------------------
# Product (torch ChainedScheduler)
# ---------------------------------------------------------------------------------------------------------------

PRODUCTS = [
    (
        lambda opt: [torch.optim.lr_scheduler.StepLR(opt, 30, 0.5), torch.optim.lr_scheduler.ExponentialLR(opt, 0.99)],
        (StepDecay(step_size=30, gamma=0.5), ExponentialDecay(gamma=0.99)),
    ),
    (
        lambda opt: [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.2, end_factor=1.0, total_iters=25),
            torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[60, 120], gamma=0.1),
        ],
        (LinearDecay(start_factor=0.2, end_factor=1.0, total=25), MultiStepDecay(milestones=(60, 120), gamma=0.1)),
    ),
    (  # growth under a decay: the factors cross
        lambda opt: [torch.optim.lr_scheduler.ExponentialLR(opt, 1.01), torch.optim.lr_scheduler.StepLR(opt, 10, 0.8)],
        (ExponentialDecay(gamma=1.01, end_factor=1e9), StepDecay(step_size=10, gamma=0.8)),
    ),
]


@pytest.mark.parametrize(("make", "factors"), PRODUCTS)
def test_product_matches_torch_chainedscheduler(make, factors):
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.ChainedScheduler(make(opt)))
    assert_curves_close(our_curve(Product(factors).bind(RUN)), ref)


def test_product_binds_each_factor_to_the_run_and_multiplies_them():
    s = Product((CosineDecay(), CosineRestarts(period="0.25dur"))).bind(RUN)
    cos, restarts = CosineDecay(total=RUN), CosineRestarts(period=RUN // 4)
    assert all(close(s(t, 1.0), cos(t, 1.0) * restarts(t, 1.0)) for t in range(RUN))


@pytest.mark.parametrize(
    ("factor", "key"),
    [
        (CosineDecay(min_lr=0.01), "schedules[1].min_lr"),
        (Cyclic(max_lr=0.5), "schedules[1].max_lr"),
        (Warmup(CosineDecay(min_lr=0.01), 5), "schedules[1].min_lr"),
    ],
)
def test_product_refuses_absolute_lrs(factor, key):
    with pytest.raises(ConfigValueError) as info:
        Product((Constant(), factor))
    assert info.value.key == key


def test_product_momentum_is_the_cycling_factors():
    s = Product((StepDecay(step_size=5), Cyclic(step_size_up=4))).bind(RUN)
    assert [s.momentum(t) for t in range(9)] == [Cyclic(step_size_up=4).momentum(t) for t in range(9)]


# ---------------------------------------------------------------------------------------------------------------
# Sequence segments with their own level (optax sgdr_schedule)
# ---------------------------------------------------------------------------------------------------------------


def test_sequence_levels_match_optax_sgdr_schedule():
    """Three cosine cycles with peaks 1, 0.5, 0.25 (x lr0), warmups and absolute end values, as optax's sgdr."""
    lr0 = GROUP_LRS[0]
    cycles = [
        dict(init_value=0.0, peak_value=lr0, warmup_steps=10, decay_steps=60, end_value=1e-3),
        dict(init_value=0.1 * lr0 * 0.5, peak_value=lr0 * 0.5, warmup_steps=5, decay_steps=80, end_value=1e-4),
        dict(init_value=lr0 * 0.25, peak_value=lr0 * 0.25, warmup_steps=0, decay_steps=60, end_value=0.0, exponent=2.0),
    ]
    ref = optax_sgdr_schedule(cycles)
    ours = Sequence(
        (
            Warmup(CosineDecay(min_lr=1e-3), 10),
            Warmup(CosineDecay(min_lr=1e-4), 5, start_factor=0.1),
            CosineDecay(exponent=2.0),
        ),
        boundaries=(60, 140),
        levels=(1.0, 0.5, 0.25),
    ).bind(RUN)
    for t in range(RUN):
        assert close(ours(t, lr0), ref(t)), t


def test_sequence_without_levels_is_unchanged_and_levels_are_checked():
    plain = Sequence((Constant(), CosineDecay()), boundaries=(50,)).bind(RUN)
    ones = Sequence((Constant(), CosineDecay()), boundaries=(50,), levels=[1.0, 1.0]).bind(RUN)
    assert our_curve(plain) == our_curve(ones)
    for levels, key in (([1.0], "levels"), ([1.0, 0.0], "levels[1]"), ([1.0, math.nan], "levels[1]")):
        with pytest.raises(ConfigValueError) as info:
            Sequence((Constant(), CosineDecay()), boundaries=(50,), levels=levels)
        assert info.value.key == key
    # a segment's absolute floor is checked against its own level's lr0
    with pytest.raises(ConfigValueError, match="min_lr"):
        Sequence((Constant(), CosineDecay(min_lr=0.04)), boundaries=(50,), levels=[1.0, 0.2]).check_lr(0.1)


# ---------------------------------------------------------------------------------------------------------------
# From the config
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["schedule=exponential", "schedule.gamma=1.01", "schedule.end_factor=3"], ExponentialDecay(1.01, 3)),
        (["schedule=step", "schedule.gamma=0.5", "schedule.end_factor=0.1"], StepDecay(10, 0.5, 0.1)),
        (["schedule=linear", "schedule.end_factor=4", "schedule.total=10"], LinearDecay(1.0, 4.0, 10)),
        (["schedule=cosine", "schedule.exponent=2"], CosineDecay(exponent=2)),
        (
            ["schedule=cosine", "schedule.warmup=5", "schedule.warmup_shape=cosine"],
            Warmup(CosineDecay(), 5, 0.0, "cosine"),
        ),
        (
            ["schedule=step", "schedule.warmup=5", "schedule.warmup_shape=exponential",
             "schedule.warmup_start_factor=0.01"],  # fmt: skip
            Warmup(StepDecay(), 5, 0.01, "exponential"),
        ),
        (
            ["schedule=product", "schedule.schedules=[{name: step, step_size: 3}, {name: exponential, gamma: 0.9}]"],
            Product((StepDecay(step_size=3), ExponentialDecay(gamma=0.9))),
        ),
        (
            ["schedule=sequence", "schedule.levels=[1, 0.5]", "schedule.boundaries=[10]"],
            Sequence((Constant(), CosineDecay()), (10,), (1.0, 0.5)),
        ),
    ],
)
def test_new_keys_reach_the_schedule(compose, overrides, expected):
    schedule, interval, _ = build_schedule(compose(*overrides).schedule)
    assert schedule == expected


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["schedule=exponential", "schedule.gamma=1.5"], "schedule.gamma"),
        (["schedule=exponential", "schedule.gamma=1.5", "schedule.end_factor=0.5"], "schedule.end_factor"),
        (["schedule=cosine", "schedule.warmup_shape=quadratic"], "schedule.warmup_shape"),
        (["schedule=cosine", "schedule.warmup=3", "schedule.warmup_shape=exponential"], "schedule.warmup_start_factor"),
        (["schedule=product", "schedule.schedules=[{name: cosine, min_lr: 0.01}, {name: step}]"],
         "schedule.schedules[0].min_lr"),  # fmt: skip
        (["schedule=product", "schedule.schedules=[{name: plateau}, {name: step}]"], "schedule.schedules[0].name"),
        (["schedule=product", "schedule.schedules=[{name: step, interval: epoch}, {name: step}]"],
         "schedule.schedules[0].interval"),  # fmt: skip
        (["schedule=sequence", "schedule.levels=[1, -1]"], "schedule.levels[1]"),
    ],
)
def test_bad_new_keys_are_refused_naming_the_key(compose, overrides, key):
    with pytest.raises(ConfigValueError) as info:
        build_schedule(compose(*overrides).schedule)
    assert info.value.key == key


def test_preview_draws_a_product(compose):
    from lrsched_pl.preview import curve

    overrides = ["schedule=product", "schedule.warmup=10", "schedule.warmup_shape=cosine"]
    result = curve(overrides)
    lr0, run = float(compose(*overrides).optimizer.lr), len(result.lr)
    ref = Warmup(Product((CosineDecay(), CosineRestarts())), 10, 0.0, "cosine").bind(run)
    assert result.lr == pytest.approx([ref(t, lr0) for t in range(run)], rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# The plateau's counting against Keras's (the documented offset)
# ---------------------------------------------------------------------------------------------------------------


def keras_reduce_on_plateau(metrics, lr0, factor, patience, cooldown):
    """keras.callbacks.ReduceLROnPlateau.on_epoch_end (mode min, min_delta 0, min_lr 0), written out from
    keras/src/callbacks/reduce_lr_on_plateau.py: the LR after each validation."""
    best, wait, cooldown_counter, lr, lrs = math.inf, 0, 0, lr0, []
    for current in metrics:
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        if current < best:
            best, wait = current, 0
        elif not cooldown_counter > 0:
            wait += 1
            if wait >= patience:
                lr, cooldown_counter, wait = lr * factor, cooldown, 0
        lrs.append(lr)
    return lrs


@pytest.mark.parametrize(("patience", "cooldown"), [(1, 1), (2, 1), (2, 3), (4, 2)])
def test_plateau_counts_one_validation_more_than_keras(patience, cooldown):
    """Keras's patience=p, cooldown=c is our patience=p - 1, cooldown=c - 1; the same numbers differ."""
    from lrsched_pl.plateau import ReducePlateau

    rng = torch.Generator().manual_seed(patience * 10 + cooldown)
    metrics = [1.0 - 0.01 * int(i) for i in torch.randint(0, 30, (120,), generator=rng)]  # many plateaus

    def ours(p: int, c: int) -> list[float]:
        plateau = ReducePlateau(factor=0.5, patience=p, threshold=0.0, threshold_mode="abs", cooldown=c, eps=0.0)
        out = []
        for m in metrics:
            plateau.step(m, lrs=[0.1])
            out.append(plateau.apply(0.1))
        return out

    keras = keras_reduce_on_plateau(metrics, 0.1, 0.5, patience, cooldown)
    assert [pytest.approx(x, rel=1e-12) for x in ours(patience - 1, cooldown - 1)] == keras
    assert ours(patience, cooldown) != pytest.approx(keras)
