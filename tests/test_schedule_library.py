"""The schedule library (linear, polynomial, cosine_restarts, onecycle, cyclic, inverse_sqrt, wsd, piecewise).

Each is compared over whole runs with its reference: torch's schedulers stepped on a two-group optimizer, or the
Keras and HuggingFace formulas written out here (the HuggingFace ones run through torch's ``LambdaLR``, as
HuggingFace does). Then properties over random valid configs, bad values one key at a time, and Hydra composition.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from functools import partial

import pytest
import torch
from conftest import assert_curves_close, hf_wsd
from hypothesis import given, settings
from hypothesis import strategies as st

from lrsched_pl.compose import Warmup
from lrsched_pl.config import OPTIONS, build_schedule, validate
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.schedules import (
    CosineDecay,
    CosineRestarts,
    Cyclic,
    Dur,
    InverseSqrt,
    LinearDecay,
    OneCycle,
    Piecewise,
    PolynomialDecay,
    Schedule,
    WarmupStableDecay,
)

OPTIONS_UNDER_TEST = (
    "cosine_restarts", "cyclic", "inverse_sqrt", "linear", "onecycle", "piecewise", "polynomial", "wsd"
)  # fmt: skip
GROUP_LRS = (0.1, 0.03)
RUN = 240  # t = 0 .. RUN - 1
DEFAULT_RUN = 460  # the default config: 20 epochs of 23 batches


def close(a: float, b: float) -> bool:
    # torch's chainable forms differ from the closed forms by ~1e-15 relative
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def torch_run(
    make_scheduler: Callable[[torch.optim.Optimizer], object], n: int = RUN, optimizer: str = "sgd"
) -> tuple[list[list[float]], list[list[float]]]:
    """LR and momentum (SGD ``momentum``, Adam ``betas[0]``) of each group at t = 0 .. n - 1 under a torch scheduler."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in GROUP_LRS]
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=GROUP_LRS[0], momentum=0.9)
    else:
        opt = torch.optim.Adam(groups, lr=GROUP_LRS[0])
    sched = make_scheduler(opt)
    lrs, momenta = [], []
    for _ in range(n):
        lrs.append([g["lr"] for g in opt.param_groups])
        momenta.append([g["momentum"] if optimizer == "sgd" else g["betas"][0] for g in opt.param_groups])
        opt.step()
        sched.step()
    return lrs, momenta


def torch_curve(make_scheduler: Callable[[torch.optim.Optimizer], object], n: int = RUN) -> list[list[float]]:
    return torch_run(make_scheduler, n)[0]


def lambda_curve(lr_lambda: Callable[[int], float], n: int = RUN) -> list[list[float]]:
    """A HuggingFace-style schedule: torch ``LambdaLR`` with ``lr_lambda``."""
    return torch_curve(lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda), n)


def our_curve(sched: Schedule, n: int = RUN) -> list[list[float]]:
    return [[sched(t, lr0) for lr0 in GROUP_LRS] for t in range(n)]


def assert_momenta_close(sched: Schedule, ref: list[list[float]]) -> None:
    for t, row in enumerate(ref):
        ours = sched.momentum(t)
        assert ours is not None
        assert all(close(ours, m) for m in row), f"t={t}: ours {ours} != reference {row}"


# ---------------------------------------------------------------------------------------------------------------
# linear: torch LinearLR
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_factor", "end_factor", "total"),
    [
        (1.0, 0.0, 100),
        (1.0, 0.0, RUN),
        (1 / 3, 1.0, 5),
        (0.5, 1.0, 37),
        (1.0, 0.25, 1),
        (0.2, 0.05, 199),
        (1.0, 1.0, 10),
    ],
)
def test_linear_matches_torch_linearlr(start_factor, end_factor, total):
    ref = torch_curve(
        lambda opt: torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=start_factor, end_factor=end_factor, total_iters=total
        )
    )
    assert_curves_close(our_curve(LinearDecay(start_factor, end_factor, total)), ref)


def test_linear_total_defaults_to_the_run():
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=RUN))
    assert_curves_close(our_curve(LinearDecay().bind(RUN)), ref)


# ---------------------------------------------------------------------------------------------------------------
# polynomial: torch PolynomialLR and Keras PolynomialDecay
# ---------------------------------------------------------------------------------------------------------------


def keras_polynomial(t: int, lr0: float, decay_steps: int, end: float, power: float, cycle: bool) -> float:
    # keras.optimizers.schedules.PolynomialDecay
    if cycle:
        multiplier = 1.0 if t == 0 else math.ceil(t / decay_steps)
        decay_steps = decay_steps * multiplier
    else:
        t = min(t, decay_steps)
    p = t / decay_steps
    return (lr0 - end) * (1 - p) ** power + end


@pytest.mark.parametrize(("power", "total"), [(1.0, 100), (1.0, RUN), (2.0, 50), (0.9, 199), (0.5, 7), (3.0, 1)])
def test_polynomial_matches_torch_polynomiallr(power, total):
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=total, power=power))
    assert_curves_close(our_curve(PolynomialDecay(power=power, total=total)), ref)


@pytest.mark.parametrize(
    ("power", "min_lr", "total", "cycle"),
    [
        (1.0, 0.0001, 100, False),
        (0.5, 0.01, 60, False),
        (2.0, 0.03, 240, False),
        (1.0, 0.0, 50, True),
        (0.5, 0.001, 37, True),
        (2.0, 0.02, 1, True),
        (1.5, 0.005, 80, True),
    ],
)
def test_polynomial_matches_keras_polynomialdecay(power, min_lr, total, cycle):
    ref = [[keras_polynomial(t, lr0, total, min_lr, power, cycle) for lr0 in GROUP_LRS] for t in range(RUN)]
    assert_curves_close(our_curve(PolynomialDecay(power=power, min_lr=min_lr, total=total, cycle=cycle)), ref)


# ---------------------------------------------------------------------------------------------------------------
# cosine_restarts: torch CosineAnnealingWarmRestarts and Keras CosineDecayRestarts
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "period_mult", "min_lr"),
    [(10, 1, 0.0), (10, 2, 0.0), (1, 1, 0.0), (1, 2, 0.001), (7, 3, 0.01), (50, 1, 0.005), (100, 1, 0.0), (3, 2, 0.03)],
)
def test_cosine_restarts_matches_torch_warm_restarts(period, period_mult, min_lr):
    ref = torch_curve(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=period, T_mult=period_mult, eta_min=min_lr
        )
    )
    assert_curves_close(our_curve(CosineRestarts(period=period, period_mult=period_mult, min_lr=min_lr)), ref)


def keras_cosine_restarts(t: int, lr0: float, first: int, t_mul: float, m_mul: float, alpha: float) -> float:
    # keras.optimizers.schedules.CosineDecayRestarts
    completed_fraction = t / first
    if t_mul == 1.0:
        i_restart = math.floor(completed_fraction)
        completed_fraction -= i_restart
    else:
        i_restart = math.floor(math.log(1.0 - completed_fraction * (1.0 - t_mul)) / math.log(t_mul))
        sum_r = (1.0 - t_mul**i_restart) / (1.0 - t_mul)
        completed_fraction = (completed_fraction - sum_r) / t_mul**i_restart
    m_fac = m_mul**i_restart
    cosine_decayed = 0.5 * m_fac * (1.0 + math.cos(math.pi * completed_fraction))
    return lr0 * ((1 - alpha) * cosine_decayed + alpha)


@pytest.mark.parametrize(
    ("period", "period_mult", "peak_decay", "alpha"),
    [(10, 1, 0.5, 0.0), (20, 2, 0.8, 0.0), (13, 1, 0.9, 0.1), (5, 3, 0.7, 0.05), (30, 1, 1.0, 0.2), (1, 1, 0.99, 0.0)],
)
def test_cosine_restarts_matches_keras_cosine_decay_restarts(period, period_mult, peak_decay, alpha):
    """Keras' ``alpha`` is relative to each group's LR: ``min_lr = alpha * lr0``, so one schedule per group."""
    for lr0 in GROUP_LRS:
        sched = CosineRestarts(period=period, period_mult=period_mult, min_lr=alpha * lr0, peak_decay=peak_decay)
        for t in range(RUN):
            ref = keras_cosine_restarts(t, lr0, period, float(period_mult), peak_decay, alpha)
            assert close(sched(t, lr0), ref), (t, lr0, sched(t, lr0), ref)


def test_cosine_restarts_peaks_decay_and_stay_above_the_floor():
    sched = CosineRestarts(period=10, min_lr=0.02, peak_decay=0.1)
    assert [sched(10 * i, 0.1) for i in range(4)] == pytest.approx([0.1, 0.028, 0.0208, 0.02008], rel=1e-12)
    assert min(sched(t, 0.1) for t in range(200)) >= 0.02


# ---------------------------------------------------------------------------------------------------------------
# onecycle: torch OneCycleLR, learning rate and momentum
# ---------------------------------------------------------------------------------------------------------------

ONECYCLE_CASES = [
    dict(total=RUN),
    dict(total=100, anneal="linear"),
    dict(total=RUN, three_phase=True),
    dict(total=150, three_phase=True, anneal="linear", pct_start=0.25),
    dict(total=200, max_lr=0.5),
    dict(total=77, max_lr=0.05, pct_start=0.1, div_factor=10.0, final_div_factor=100.0),
    dict(total=RUN, pct_start=0.9, base_momentum=0.5, max_momentum=0.99),
    dict(total=30, pct_start=0.5, three_phase=True, div_factor=1.5, final_div_factor=0.5),
    dict(total=10, pct_start=0.15, base_momentum=0.9, max_momentum=0.9),
]


def torch_onecycle(case: dict, optimizer: str = "sgd") -> tuple[list[list[float]], list[list[float]]]:
    max_lr = case.get("max_lr") or list(GROUP_LRS)
    kwargs = {
        "total_steps": case["total"],
        "pct_start": case.get("pct_start", 0.3),
        "anneal_strategy": case.get("anneal", "cos"),
        "three_phase": case.get("three_phase", False),
        "div_factor": case.get("div_factor", 25.0),
        "final_div_factor": case.get("final_div_factor", 1e4),
        "base_momentum": case.get("base_momentum", 0.85),
        "max_momentum": case.get("max_momentum", 0.95),
    }
    return torch_run(lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, **kwargs), case["total"], optimizer)


@pytest.mark.parametrize("case", ONECYCLE_CASES, ids=repr)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_onecycle_matches_torch_onecyclelr(case, optimizer):
    lrs, momenta = torch_onecycle(case, optimizer)
    sched = OneCycle(**case)
    assert_curves_close(our_curve(sched, case["total"]), lrs)
    assert_momenta_close(sched, momenta)


@pytest.mark.parametrize("case", ONECYCLE_CASES[:3], ids=repr)
def test_onecycle_holds_its_last_value_after_total(case):
    sched = OneCycle(**case)
    last = case["total"] - 1
    for t in range(last, last + 50):
        assert sched.affine(t) == sched.affine(last)
        assert sched.momentum(t) == sched.momentum(last)


def test_onecycle_total_defaults_to_the_run_and_momentum_can_be_off():
    lrs, _ = torch_onecycle(dict(total=RUN))
    assert_curves_close(our_curve(OneCycle().bind(RUN)), lrs)
    assert OneCycle(cycle_momentum=False, total=RUN).momentum(5) is None


# ---------------------------------------------------------------------------------------------------------------
# cyclic: torch CyclicLR, learning rate and momentum
# ---------------------------------------------------------------------------------------------------------------

CYCLIC_CASES = [
    dict(step_size_up=20),
    dict(step_size_up=20, min_lr=0.001),
    dict(step_size_up=15, step_size_down=35, min_lr=0.01),
    dict(step_size_up=10, mode="triangular2", min_lr=0.001),
    dict(step_size_up=7, step_size_down=3, mode="triangular2"),
    dict(step_size_up=25, mode="exp_range", gamma=0.99, min_lr=0.002),
    dict(step_size_up=1, mode="exp_range", gamma=0.9),
    dict(step_size_up=30, min_lr=0.01, max_lr=0.5),
    dict(step_size_up=12, step_size_down=5, mode="triangular2", min_lr=0.2, max_lr=0.6),
    dict(step_size_up=40, mode="exp_range", gamma=0.995, max_lr=0.05, base_momentum=0.7, max_momentum=0.95),
]


def torch_cyclic(case: dict, optimizer: str = "sgd") -> tuple[list[list[float]], list[list[float]]]:
    max_lr = case.get("max_lr") or list(GROUP_LRS)
    return torch_run(
        lambda opt: torch.optim.lr_scheduler.CyclicLR(
            opt,
            base_lr=case.get("min_lr", 0.0),
            max_lr=max_lr,
            step_size_up=case["step_size_up"],
            step_size_down=case.get("step_size_down"),
            mode=case.get("mode", "triangular"),
            gamma=case.get("gamma", 1.0),
            base_momentum=case.get("base_momentum", 0.8),
            max_momentum=case.get("max_momentum", 0.9),
        ),
        RUN,
        optimizer,
    )


@pytest.mark.parametrize("case", CYCLIC_CASES, ids=repr)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_cyclic_matches_torch_cycliclr(case, optimizer):
    lrs, momenta = torch_cyclic(case, optimizer)
    sched = Cyclic(**case)
    assert_curves_close(our_curve(sched), lrs)
    assert_momenta_close(sched, momenta)


def test_cyclic_absolute_max_lr_ignores_lr0_and_momentum_can_be_off():
    sched = Cyclic(min_lr=0.2, max_lr=0.6, step_size_up=4)
    assert sched(2, 0.1) == sched(2, 7.0) == pytest.approx(0.4)
    sched.check_lr(0.1)  # min_lr above the optimizer's lr is fine when the peak is absolute
    with pytest.raises(ConfigValueError, match="`min_lr`"):
        Cyclic(min_lr=0.2, step_size_up=4).check_lr(0.1)
    assert Cyclic(cycle_momentum=False, step_size_up=4).momentum(3) is None


# ---------------------------------------------------------------------------------------------------------------
# HuggingFace schedules after a warmup: inverse_sqrt, wsd, cosine
# ---------------------------------------------------------------------------------------------------------------


def hf_inverse_sqrt(current_step: int, *, num_warmup_steps: int, timescale: int | None) -> float:
    # transformers.optimization.get_inverse_sqrt_schedule
    if timescale is None:
        timescale = num_warmup_steps or 10_000
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    shift = timescale - num_warmup_steps
    return 1.0 / math.sqrt((current_step + shift) / timescale)


@pytest.mark.parametrize(("warmup", "timescale"), [(10, None), (10, 10), (1, 1), (50, 200), (100, 7), (200, None)])
def test_warmup_inverse_sqrt_matches_huggingface(warmup, timescale):
    ref = lambda_curve(partial(hf_inverse_sqrt, num_warmup_steps=warmup, timescale=timescale))
    # HuggingFace's default timescale is the warmup length; the config layer fills it the same way
    sched = Warmup(InverseSqrt(timescale=timescale or warmup), warmup).bind(RUN)
    assert_curves_close(our_curve(sched), ref)


@pytest.mark.parametrize("timescale", [None, 1, 10, 10_000])
def test_inverse_sqrt_alone_matches_huggingface_without_warmup(timescale):
    ref = lambda_curve(partial(hf_inverse_sqrt, num_warmup_steps=0, timescale=timescale))
    assert_curves_close(our_curve(InverseSqrt(timescale=timescale)), ref)


WSD_CASES = [
    (10, 40, 200, "cosine"),
    (10, 40, 200, "linear"),
    (10, 40, 200, "1-sqrt"),
    (1, 1, 50, "cosine"),
    (30, 170, 200, "linear"),
    (50, 100, RUN, "1-sqrt"),
]


@pytest.mark.parametrize(("warmup", "decay", "n", "decay_type"), WSD_CASES)
def test_warmup_stable_decay_matches_huggingface_wsd(warmup, decay, n, decay_type):
    ref = lambda_curve(
        partial(
            hf_wsd,
            num_warmup_steps=warmup,
            num_decay_steps=decay,
            num_training_steps=n,
            decay_type=decay_type,
            min_lr_ratio=0.0,
        )
    )
    sched = Warmup(WarmupStableDecay(decay=decay, decay_type=decay_type), warmup).bind(n)
    assert_curves_close(our_curve(sched), ref)


@pytest.mark.parametrize(("warmup", "decay", "n", "decay_type"), WSD_CASES)
@pytest.mark.parametrize("ratio", [0.1, 0.5])
def test_warmup_stable_decay_matches_huggingface_min_lr_ratio(warmup, decay, n, decay_type, ratio):
    """HuggingFace's ``min_lr_ratio`` is ``min_lr / lr0`` and also starts its warmup: one schedule per group."""
    for lr0 in GROUP_LRS:
        inner = WarmupStableDecay(decay=decay, decay_type=decay_type, min_lr=ratio * lr0)
        sched = Warmup(inner, warmup, start_factor=ratio).bind(n)
        for t in range(RUN):
            ref = lr0 * hf_wsd(
                t,
                num_warmup_steps=warmup,
                num_decay_steps=decay,
                num_training_steps=n,
                decay_type=decay_type,
                min_lr_ratio=ratio,
            )
            assert close(sched(t, lr0), ref), (t, lr0, sched(t, lr0), ref)


def hf_cosine_with_warmup(current_step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    # transformers.optimization.get_cosine_schedule_with_warmup, num_cycles=0.5
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(0.5) * 2.0 * progress)))


@pytest.mark.parametrize(("warmup", "n"), [(10, 200), (1, 50), (100, RUN), (37, 101)])
def test_warmup_cosine_matches_huggingface(warmup, n):
    ref = lambda_curve(partial(hf_cosine_with_warmup, num_warmup_steps=warmup, num_training_steps=n), n)
    assert_curves_close(our_curve(Warmup(CosineDecay(), warmup).bind(n), n), ref)


# ---------------------------------------------------------------------------------------------------------------
# piecewise: Keras PiecewiseConstantDecay
# ---------------------------------------------------------------------------------------------------------------


def keras_piecewise(t: int, boundaries: list[int], values: list[float]) -> float:
    # keras.optimizers.schedules.PiecewiseConstantDecay, values as factors of lr0
    if t <= boundaries[0]:
        return values[0]
    for low, high, v in zip(boundaries, boundaries[1:], values[1:]):
        if low < t <= high:
            return v
    return values[-1]


@pytest.mark.parametrize(
    ("boundaries", "values"),
    [
        ([100], [1.0, 0.1]),
        ([10, 20, 30], [1.0, 0.5, 0.25, 0.125]),
        ([1, 2], [0.3, 1.0, 2.0]),
        ([239, 500], [1, 0.1, 0.01]),
    ],
)
def test_piecewise_matches_keras_piecewise_constant_decay(boundaries, values):
    ref = [[lr0 * keras_piecewise(t, boundaries, values) for lr0 in GROUP_LRS] for t in range(RUN)]
    assert_curves_close(our_curve(Piecewise(boundaries=boundaries, values=values)), ref)


def test_piecewise_fractions_resolve_against_the_run():
    bound = Piecewise(boundaries=("0.5dur", 300), values=(1.0, 0.5, 0.1)).bind(DEFAULT_RUN)
    assert bound.boundaries == (230, 300)
    with pytest.raises(ConfigValueError, match="strictly increasing"):
        Piecewise(boundaries=("0.75dur", 300), values=(1.0, 0.5, 0.1)).bind(DEFAULT_RUN)  # 345 > 300


# ---------------------------------------------------------------------------------------------------------------
# Properties over random valid configs
# ---------------------------------------------------------------------------------------------------------------

runs = st.integers(min_value=10, max_value=300)
factors = st.floats(min_value=1e-3, max_value=1.0)
lrs0 = st.sampled_from([0.1, 1e-3, 3.0])


def lengths(run: int) -> st.SearchStrategy:
    return st.one_of(st.integers(1, run), st.floats(0.01, 1.0).map(lambda f: Dur(round(f, 3) or 0.01)))


@st.composite
def library_cases(draw: st.DrawFn, kind: str) -> tuple[Schedule, int, float, float, float, int | None]:
    """A random valid ``schedule=kind``: ``(bound schedule, run, lr0, floor, peak, clamp_from)``.

    ``clamp_from`` is the first time from which the LR holds its final value (None for periodic schedules).
    """
    run, lr0 = draw(runs), draw(lrs0)
    min_lr = draw(st.sampled_from([0.0, 0.1, 0.5])) * lr0
    if kind == "linear":
        s, e = draw(factors), draw(st.floats(0.0, 1.0))
        sched = LinearDecay(s, e, draw(st.none() | lengths(run))).bind(run)
        return sched, run, lr0, lr0 * min(s, e), lr0 * max(s, e), sched.total
    if kind == "polynomial":
        cycle = draw(st.booleans())
        sched = PolynomialDecay(draw(st.floats(0.1, 5.0)), min_lr, draw(st.none() | lengths(run)), cycle).bind(run)
        return sched, run, lr0, min_lr, lr0, None if cycle else sched.total
    if kind == "cosine_restarts":
        sched = CosineRestarts(draw(lengths(run)), draw(st.integers(1, 3)), min_lr, draw(factors)).bind(run)
        return sched, run, lr0, min_lr, lr0, None
    if kind == "onecycle":
        three = draw(st.booleans())
        total = draw(st.integers(10, run))
        pct = draw(st.floats(0.11, 0.5 if three else 0.95))
        div, final = draw(st.floats(0.5, 100.0)), draw(st.floats(0.5, 1e4))
        max_lr = draw(st.none() | st.floats(1e-4, 1.0))
        sched = OneCycle(max_lr, total, pct, div, final, draw(st.sampled_from(["cos", "linear"])), three)
        peak = lr0 if max_lr is None else max_lr
        levels = [1.0, 1.0 / div, 1.0 / div / final]
        return sched, run, lr0, peak * min(levels), peak * max(levels), total - 1
    if kind == "cyclic":
        max_lr = draw(st.none() | st.floats(1e-3, 2.0).map(lambda x: min_lr + x))  # above min_lr: a real cycle
        sched = Cyclic(
            min_lr,
            max_lr,
            draw(lengths(run)),
            draw(st.none() | lengths(run)),
            draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
            draw(st.floats(0.9, 1.0)),
        ).bind(run)
        return sched, run, lr0, min_lr, lr0 if max_lr is None else max_lr, None
    if kind == "inverse_sqrt":
        sched = InverseSqrt(draw(st.none() | st.integers(1, 10_000)))
        return sched, run, lr0, 0.0, lr0, None
    if kind == "wsd":
        total = draw(st.integers(1, run))
        decay = draw(st.integers(1, total))
        sched = WarmupStableDecay(decay, draw(st.sampled_from(["cosine", "linear", "1-sqrt"])), min_lr, total)
        return sched, run, lr0, min_lr, lr0, total
    n = draw(st.integers(1, 4))
    boundaries = sorted(draw(st.sets(st.integers(1, run), min_size=n, max_size=n)))
    values = draw(st.lists(st.floats(1e-3, 10.0), min_size=n + 1, max_size=n + 1))
    sched = Piecewise(boundaries=boundaries, values=values)
    return sched, run, lr0, lr0 * min(values), lr0 * max(values), boundaries[-1] + 1


@pytest.mark.parametrize("option", OPTIONS_UNDER_TEST)
@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_curves_are_finite_bounded_clamped_and_pure(option, data):
    sched, run, lr0, floor, peak, clamp_from = data.draw(library_cases(option))
    ts = range(run + 30)
    curve = [sched(t, lr0) for t in ts]
    assert curve == [sched(t, lr0) for t in ts]  # no hidden state
    assert curve == [pickle.loads(pickle.dumps(sched))(t, lr0) for t in ts]
    low, high = floor * (1 - 1e-12) - 1e-15, peak * (1 + 1e-12) + 1e-15
    for t, lr in zip(ts, curve):
        assert math.isfinite(lr) and low <= lr <= high, (t, lr, floor, peak)
    if clamp_from is not None:
        assert all(lr == curve[clamp_from] for lr in curve[clamp_from:])
    momentum = [sched.momentum(t) for t in ts]
    if isinstance(sched, (OneCycle, Cyclic)):
        assert all(sched.base_momentum - 1e-12 <= m <= sched.max_momentum + 1e-12 for m in momentum)
    else:
        assert momentum == [None] * len(ts)


def test_group_ratios_survive_without_a_floor():
    scheds = [
        LinearDecay(total=50),
        PolynomialDecay(power=2.0, total=50),
        CosineRestarts(period=13, period_mult=2, peak_decay=0.5),
        OneCycle(total=100),
        Cyclic(step_size_up=10, mode="triangular2"),
        InverseSqrt(timescale=20),
        WarmupStableDecay(decay=20, total=100),
        Piecewise(boundaries=(10, 20), values=(1.0, 0.3, 0.2)),
    ]
    for sched in scheds:
        for t in range(0, 150, 7):
            a, b = (sched(t, lr0) for lr0 in GROUP_LRS)
            assert close(a * GROUP_LRS[1], b * GROUP_LRS[0]), (sched, t)


# ---------------------------------------------------------------------------------------------------------------
# bind
# ---------------------------------------------------------------------------------------------------------------

TOTAL_CLASSES = [LinearDecay, PolynomialDecay, OneCycle, WarmupStableDecay]
TOTAL_EXTRA = {WarmupStableDecay: {"decay": 10}}  # its default decay (0.2dur) needs a run to resolve against


@pytest.mark.parametrize("cls", TOTAL_CLASSES, ids=lambda c: c.__name__)
def test_bind_fills_total_with_the_horizon(cls):
    extra = TOTAL_EXTRA.get(cls, {})
    assert cls(**extra).bind(DEFAULT_RUN).total == DEFAULT_RUN
    assert cls(**extra).bind(DEFAULT_RUN, horizon=400).total == 400
    assert cls(total=50, **extra).bind(DEFAULT_RUN).total == 50
    assert cls(total=Dur(0.5), **extra).bind(DEFAULT_RUN).total == 230


@pytest.mark.parametrize("cls", TOTAL_CLASSES, ids=lambda c: c.__name__)
def test_unbound_total_is_refused(cls):
    extra = TOTAL_EXTRA.get(cls, {})
    with pytest.raises(ConfigValueError) as info:
        cls(**extra).bind(None)
    assert info.value.key == "total"
    with pytest.raises(RuntimeError, match="bind"):
        cls(**extra)(3, 0.1)


def test_default_lengths_are_fractions_of_the_run():
    assert CosineRestarts().period == Dur(0.25) and CosineRestarts().bind(DEFAULT_RUN).period == 115
    assert Cyclic().bind(DEFAULT_RUN).step_size_up == 46
    assert WarmupStableDecay().bind(DEFAULT_RUN).decay == 92
    assert Piecewise().bind(DEFAULT_RUN).boundaries == (230, 345)
    with pytest.raises(ConfigValueError) as info:
        CosineRestarts().bind(None)
    assert info.value.key == "period"


def test_onecycle_needs_a_rising_phase():
    """torch divides by zero when ``pct_start * total == 1``; we refuse it, and anything shorter, at bind."""
    OneCycle(pct_start=0.25, total=5)
    for total in (1, 3, 4):
        with pytest.raises(ConfigValueError) as info:
            OneCycle(pct_start=0.25).bind(total)
        assert info.value.key == "total"


def test_wsd_decay_longer_than_its_span_is_refused():
    with pytest.raises(ConfigValueError) as info:
        WarmupStableDecay(decay=300).bind(200)
    assert info.value.key == "decay"
    with pytest.raises(ConfigValueError) as info:
        Warmup(WarmupStableDecay(decay=195), 10).bind(200)
    assert info.value.key == "decay"


def test_schedules_are_frozen():
    with pytest.raises(AttributeError):
        OneCycle().pct_start = 0.5


# ---------------------------------------------------------------------------------------------------------------
# Bad arguments, one key at a time
# ---------------------------------------------------------------------------------------------------------------

VALID = {
    LinearDecay: dict(start_factor=1.0, end_factor=0.0, total=10),
    PolynomialDecay: dict(power=1.0, min_lr=0.0, total=10, cycle=False),
    CosineRestarts: dict(period=10, period_mult=2, min_lr=0.0, peak_decay=1.0),
    OneCycle: dict(max_lr=None, total=100, pct_start=0.3, anneal="cos", three_phase=False),
    Cyclic: dict(min_lr=0.0, max_lr=None, step_size_up=10, step_size_down=None, mode="triangular", gamma=1.0),
    InverseSqrt: dict(timescale=100),
    WarmupStableDecay: dict(decay=10, decay_type="cosine", min_lr=0.0, total=100),
    Piecewise: dict(boundaries=[10, 20], values=[1.0, 0.5, 0.1]),
}

BAD_FLOATS = [math.nan, math.inf, True, "0.5"]
BAD_LENGTHS = [0, -1, 2.5, True, "3", "2dur", "abcdur"]

BAD = [
    *[(LinearDecay, "start_factor", v, "start_factor") for v in (0.0, -0.5, 1.5, *BAD_FLOATS)],
    *[(LinearDecay, "end_factor", v, "end_factor") for v in (-0.1, *BAD_FLOATS)],  # > 1 grows (test_shapes)
    *[(LinearDecay, "total", v, "total") for v in BAD_LENGTHS],
    *[(PolynomialDecay, "power", v, "power") for v in (0.0, -1.0, *BAD_FLOATS)],
    *[(PolynomialDecay, "min_lr", v, "min_lr") for v in (-1e-9, *BAD_FLOATS)],
    *[(PolynomialDecay, "total", v, "total") for v in BAD_LENGTHS],
    *[(CosineRestarts, "period", v, "period") for v in (*BAD_LENGTHS, None)],
    *[(CosineRestarts, "period_mult", v, "period_mult") for v in (0, -1, 1.5, True, None)],
    *[(CosineRestarts, "min_lr", v, "min_lr") for v in (-0.1, *BAD_FLOATS)],
    *[(CosineRestarts, "peak_decay", v, "peak_decay") for v in (0.0, 1.5, -0.5, *BAD_FLOATS)],
    *[(OneCycle, "max_lr", v, "max_lr") for v in (0.0, -0.1, *BAD_FLOATS)],
    *[(OneCycle, "total", v, "total") for v in (*BAD_LENGTHS, 3)],  # 0.3 * 3 <= 1: no rising phase
    *[(OneCycle, "pct_start", v, "pct_start") for v in (0.0, 1.0, 1.5, -0.1, *BAD_FLOATS)],
    *[(OneCycle, "div_factor", v, "div_factor") for v in (0.0, -25.0, *BAD_FLOATS)],
    *[(OneCycle, "final_div_factor", v, "final_div_factor") for v in (0.0, -1.0, *BAD_FLOATS)],
    *[(OneCycle, "anneal", v, "anneal") for v in ("cosine", "exp", None)],
    *[(OneCycle, "base_momentum", v, "base_momentum") for v in (-0.1, 1.0, *BAD_FLOATS)],
    *[(OneCycle, "max_momentum", v, "max_momentum") for v in (1.0, 0.5, *BAD_FLOATS)],  # 0.5 < base 0.85
    *[(Cyclic, "min_lr", v, "min_lr") for v in (-0.1, *BAD_FLOATS)],
    *[(Cyclic, "max_lr", v, "max_lr") for v in (0.0, -0.1, *BAD_FLOATS)],  # 0.0 = min_lr: no cycle
    *[(Cyclic, "step_size_up", v, "step_size_up") for v in (*BAD_LENGTHS, None)],
    *[(Cyclic, "step_size_down", v, "step_size_down") for v in BAD_LENGTHS],
    *[(Cyclic, "mode", v, "mode") for v in ("triangle", "exp", None)],
    *[(Cyclic, "gamma", v, "gamma") for v in (0.0, 1.1, *BAD_FLOATS)],
    *[(Cyclic, "base_momentum", v, "base_momentum") for v in (-0.1, 1.0)],
    *[(Cyclic, "max_momentum", v, "max_momentum") for v in (0.7, 1.0)],  # 0.7 < base 0.8
    *[(InverseSqrt, "timescale", v, "timescale") for v in (0, -5, 2.5, True, "10")],
    *[(WarmupStableDecay, "decay", v, "decay") for v in (*BAD_LENGTHS, None, 101)],  # 101 > total
    *[(WarmupStableDecay, "decay_type", v, "decay_type") for v in ("sqrt", "exp", None)],
    *[(WarmupStableDecay, "min_lr", v, "min_lr") for v in (-0.1, *BAD_FLOATS)],
    *[(WarmupStableDecay, "total", v, "total") for v in BAD_LENGTHS],
    (Piecewise, "boundaries", [], "boundaries"),
    (Piecewise, "boundaries", [20, 10], "boundaries"),
    (Piecewise, "boundaries", [10, 10], "boundaries"),
    (Piecewise, "boundaries", [0, 10], "boundaries[0]"),
    (Piecewise, "boundaries", [10, 2.5], "boundaries[1]"),
    (Piecewise, "boundaries", [10, "2dur"], "boundaries[1]"),
    (Piecewise, "values", [1.0, 0.5], "values"),
    (Piecewise, "values", [1.0, 0.5, 0.1, 0.01], "values"),
    (Piecewise, "values", [1.0, 0.0, 0.1], "values[1]"),
    (Piecewise, "values", [1.0, 0.5, -0.1], "values[2]"),
    (Piecewise, "values", [math.nan, 0.5, 0.1], "values[0]"),
]
THREE_PHASE_BAD = (OneCycle, "pct_start", 0.6)  # valid alone, refused with three_phase
BAD.append((*THREE_PHASE_BAD, "pct_start"))


def _id(x: object) -> str:
    return x.__name__ if isinstance(x, type) else repr(x)


@pytest.mark.parametrize(("cls", "key", "value", "named"), BAD, ids=_id)
def test_bad_argument_names_its_key(cls, key, value, named):
    valid = {**VALID[cls], "three_phase": True} if (cls, key, value) == THREE_PHASE_BAD else VALID[cls]
    cls(**valid)  # the config is valid before the one key is broken
    with pytest.raises(ConfigValueError) as info:
        cls(**{**valid, key: value})
    assert info.value.key == named
    assert f"`{named}` must be " in str(info.value)


@pytest.mark.parametrize(
    ("cls", "key", "value"),
    [
        (LinearDecay, "start_factor", 1e-9),
        (LinearDecay, "end_factor", 1.0),
        (PolynomialDecay, "power", 1e-9),
        (CosineRestarts, "period_mult", 1),
        (CosineRestarts, "period", "1dur"),
        (CosineRestarts, "peak_decay", 1e-9),
        (OneCycle, "pct_start", 0.999),
        (OneCycle, "max_lr", 10.0),
        (OneCycle, "total", 4),
        (Cyclic, "max_lr", 1e-9),  # just above min_lr (0): equal would be a constant LR, refused
        (Cyclic, "step_size_down", 1),
        (Cyclic, "gamma", 1e-9),
        (InverseSqrt, "timescale", None),
        (InverseSqrt, "timescale", 1),
        (WarmupStableDecay, "decay", 100),
        (WarmupStableDecay, "decay_type", "1-sqrt"),
        (Piecewise, "boundaries", [1, "0.5dur"]),
        (Piecewise, "values", [5.0, 1e-9, 1]),
    ],
    ids=_id,
)
def test_boundary_values_are_accepted(cls, key, value):
    cls(**{**VALID[cls], key: value})


def test_three_phase_onecycle_allows_half():
    OneCycle(pct_start=0.5, three_phase=True, total=10)


# ---------------------------------------------------------------------------------------------------------------
# Hydra: every new option composes, validates, builds and runs over the default run
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", OPTIONS_UNDER_TEST)
def test_option_composes_and_runs_the_default_run(compose, option):
    cfg = compose(f"schedule={option}")
    validate(cfg)
    schedule, interval, plateau = build_schedule(cfg.schedule)
    assert type(schedule) is OPTIONS[option].cls and interval == "step" and plateau is None
    assert schedule == OPTIONS[option].cls()
    bound = schedule.bind(DEFAULT_RUN)
    lr0 = cfg.optimizer.lr
    curve = [bound(t, lr0) for t in range(DEFAULT_RUN)]
    assert all(math.isfinite(lr) and 0.0 <= lr <= lr0 * (1 + 1e-12) for lr in curve)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["schedule=linear", "schedule.total=0.5dur"], LinearDecay(total=Dur(0.5))),
        (["schedule=polynomial", "schedule.power=2", "schedule.cycle=true"], PolynomialDecay(power=2.0, cycle=True)),
        (["schedule=cosine_restarts", "schedule.period=40", "schedule.period_mult=2"], CosineRestarts(40, 2)),
        (
            ["schedule=onecycle", "schedule.max_lr=0.5", "schedule.anneal=linear", "schedule.three_phase=true"],
            OneCycle(max_lr=0.5, anneal="linear", three_phase=True),
        ),
        (["schedule=cyclic", "schedule.mode=exp_range", "schedule.gamma=0.99"], Cyclic(mode="exp_range", gamma=0.99)),
        (["schedule=cyclic", "schedule.step_size_down=20"], Cyclic(step_size_down=20)),
        (["schedule=inverse_sqrt", "schedule.timescale=100"], InverseSqrt(timescale=100)),
        (["schedule=wsd", "schedule.decay_type=1-sqrt", "schedule.decay=50"], WarmupStableDecay(50, "1-sqrt")),
        (
            ["schedule=piecewise", "schedule.boundaries=[100,0.8dur]", "schedule.values=[1,0.5,0.1]"],
            Piecewise(boundaries=(100, Dur(0.8)), values=(1.0, 0.5, 0.1)),
        ),
    ],
    ids=lambda x: " ".join(x) if isinstance(x, list) else "",
)
def test_overrides_reach_the_schedule(compose, overrides, expected):
    cfg = compose(*overrides)
    validate(cfg)
    assert build_schedule(cfg.schedule)[0] == expected


BAD_OVERRIDES = [
    (["schedule=linear", "schedule.start_factor=0"], "schedule.start_factor"),
    (["schedule=linear", "schedule.total=2dur"], "schedule.total"),
    (["schedule=polynomial", "schedule.power=0"], "schedule.power"),
    (["schedule=polynomial", "schedule.min_lr=-1"], "schedule.min_lr"),
    (["schedule=polynomial", "schedule.min_lr=0.5"], "schedule.min_lr"),  # above optimizer.lr=0.1
    (["schedule=cosine_restarts", "schedule.period_mult=0"], "schedule.period_mult"),
    (["schedule=cosine_restarts", "schedule.period=0"], "schedule.period"),
    (["schedule=cosine_restarts", "schedule.peak_decay=1.5"], "schedule.peak_decay"),
    (["schedule=onecycle", "schedule.pct_start=1.5"], "schedule.pct_start"),
    (["schedule=onecycle", "schedule.pct_start=0"], "schedule.pct_start"),
    (["schedule=onecycle", "schedule.anneal=cosine"], "anneal"),
    (["schedule=onecycle", "schedule.max_momentum=0.5"], "schedule.max_momentum"),
    (["schedule=cyclic", "schedule.mode=triangle"], "mode"),
    (["schedule=cyclic", "schedule.gamma=2"], "schedule.gamma"),
    (["schedule=cyclic", "schedule.min_lr=0.5"], "schedule.min_lr"),
    (["schedule=inverse_sqrt", "schedule.timescale=0"], "schedule.timescale"),
    (["schedule=wsd", "schedule.decay_type=sqrt"], "decay_type"),
    (["schedule=wsd", "schedule.decay=0"], "schedule.decay"),
    (["schedule=piecewise", "schedule.values=[1,0.5]"], "schedule.values"),
    (["schedule=piecewise", "schedule.boundaries=[200,100]"], "schedule.boundaries"),
    (["schedule=piecewise", "schedule.values=[1,0,0.1]"], "schedule.values[1]"),
]


@pytest.mark.parametrize("overrides,key", BAD_OVERRIDES, ids=[" ".join(o) for o, _ in BAD_OVERRIDES])
def test_bad_overrides_are_refused_naming_the_key(compose, overrides, key):
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ValidationError

    with pytest.raises((ConfigValueError, ConfigCompositionException, ValidationError)) as info:
        validate(compose(*overrides))
    message = str(info.value) + str(info.value.__cause__ or "")
    assert key in message, message
