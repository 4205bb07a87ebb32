"""The pure schedules, with no Trainer: whole curves against torch's schedulers and Keras' formulas."""

from __future__ import annotations

import doctest
import math
import pickle
from collections.abc import Callable

import pytest
import torch
from conftest import torch_lr_curve

import lrsched_pl.plateau
import lrsched_pl.schedules
from lrsched_pl.errors import ConfigValueError
from lrsched_pl.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    MultiStepDecay,
    Schedule,
    StepDecay,
    TimeBasedDecay,
)

GROUP_LRS = (0.1, 0.03)
RUN = 200  # t = 0 .. RUN - 1


def close(a: float, b: float) -> bool:
    # torch's chainable forms differ from the closed forms by ~1e-15 relative
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def torch_curve(make: Callable[[torch.optim.Optimizer], object], n: int = RUN) -> list[list[float]]:
    """Each group's LR at t = 0 .. n - 1 under a torch scheduler (:func:`conftest.torch_lr_curve`)."""
    return torch_lr_curve(make, n, GROUP_LRS)


def our_curve(sched: Schedule, n: int = RUN) -> list[list[float]]:
    return [[sched(t, lr0) for lr0 in GROUP_LRS] for t in range(n)]


def assert_curves_close(ours: list[list[float]], ref: list[list[float]]) -> None:
    assert len(ours) == len(ref)
    for t, (a, b) in enumerate(zip(ours, ref)):
        assert all(close(x, y) for x, y in zip(a, b)), f"t={t}: ours {a} != reference {b}"


# ---------------------------------------------------------------------------------------------------------------
# Whole curves against independent references
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("step_size", "gamma"), [(1, 0.5), (2, 0.5), (7, 0.1), (30, 0.9), (10, 1.0)])
def test_step_decay_matches_torch_steplr(step_size, gamma):
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma))
    assert_curves_close(our_curve(StepDecay(step_size=step_size, gamma=gamma)), ref)


@pytest.mark.parametrize(
    ("milestones", "gamma"),
    [((1,), 0.1), ((10, 15), 0.1), ((5, 50, 51, 150), 0.5), ((3, 199, 250), 0.3), ((100,), 1.0)],
)
def test_multistep_decay_matches_torch_multisteplr(milestones, gamma):
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma))
    assert_curves_close(our_curve(MultiStepDecay(milestones=milestones, gamma=gamma)), ref)


def test_multistep_decay_accepts_a_list():
    assert MultiStepDecay(milestones=[2, 4], gamma=0.5) == MultiStepDecay(milestones=(2, 4), gamma=0.5)


@pytest.mark.parametrize("gamma", [0.9, 0.99, 0.5, 1.0])
def test_exponential_decay_matches_torch_exponentiallr(gamma):
    ref = torch_curve(lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma))
    assert_curves_close(our_curve(ExponentialDecay(gamma=gamma)), ref)


COSINE_CASES = [(199, 0.0), (50, 0.001), (1, 0.0), (137, 0.01), (10, 0.03), (2, 0.005)]


@pytest.mark.parametrize(("total", "min_lr"), COSINE_CASES)
def test_cosine_decay_matches_torch_cosineannealinglr_up_to_total(total, min_lr):
    ref = torch_curve(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=min_lr), n=total + 1
    )
    assert_curves_close(our_curve(CosineDecay(min_lr=min_lr, total=total), n=total + 1), ref)


@pytest.mark.parametrize(("total", "min_lr"), COSINE_CASES)
def test_cosine_decay_stays_at_min_lr_after_total(total, min_lr):
    """Unlike torch's periodic ``CosineAnnealingLR``, the LR stays at ``min_lr`` after ``total``."""
    sched = CosineDecay(min_lr=min_lr, total=total)
    for t in range(RUN + total):
        for lr0 in GROUP_LRS:
            expected = min_lr + (lr0 - min_lr) * (1 + math.cos(math.pi * min(t, total) / total)) / 2
            assert close(sched(t, lr0), expected), (t, lr0)
            if t >= total:
                assert close(sched(t, lr0), min_lr), (t, lr0)


@pytest.mark.parametrize("lr0", [0.1, 0.03, 1e-5, 3.0])
def test_constant_keeps_lr0(lr0):
    assert [Constant()(t, lr0) for t in range(RUN)] == [lr0] * RUN


@pytest.mark.parametrize(
    ("decay", "decay_steps", "staircase"),
    [
        (0.01, 1, False),
        (0.5, 1, False),
        (0.1, 10, True),
        (0.1, 10, False),
        (0.0, 1, False),
        (2.0, 7, True),
        (2.0, 7, False),
        (0.3, 1, True),
    ],
)
def test_time_based_decay_matches_keras_inverse_time_decay(decay, decay_steps, staircase):
    def keras(t: int, lr0: float) -> float:
        # keras.optimizers.schedules.InverseTimeDecay
        p = math.floor(t / decay_steps) if staircase else t / decay_steps
        return lr0 / (1 + decay * p)

    ref = [[keras(t, lr0) for lr0 in GROUP_LRS] for t in range(RUN)]
    assert_curves_close(our_curve(TimeBasedDecay(decay=decay, decay_steps=decay_steps, staircase=staircase)), ref)


def test_time_based_decay_legacy_keras_decay():
    """``decay_steps=1`` is the legacy optimizer argument ``lr0 / (1 + decay * iterations)``."""
    sched = TimeBasedDecay(decay=0.01)
    assert [sched(t, 0.1) for t in (0, 1, 100)] == pytest.approx([0.1, 0.1 / 1.01, 0.05], rel=1e-12)


def test_group_ratios_survive():
    for sched in ALL_SCHEDULES:
        if sched.min_lr:
            continue  # an absolute floor does not keep ratios, by design
        for t in range(0, RUN, 7):
            a, b = (sched(t, lr0) for lr0 in GROUP_LRS)
            assert close(a * GROUP_LRS[1], b * GROUP_LRS[0]), (sched, t)


# ---------------------------------------------------------------------------------------------------------------
# The affine form
# ---------------------------------------------------------------------------------------------------------------

ALL_SCHEDULES = [
    Constant(),
    StepDecay(step_size=3, gamma=0.5),
    MultiStepDecay(milestones=(4, 9), gamma=0.1),
    ExponentialDecay(gamma=0.95),
    TimeBasedDecay(decay=0.2, decay_steps=3, staircase=True),
    TimeBasedDecay(decay=0.2, decay_steps=3),
    CosineDecay(total=40),
    CosineDecay(min_lr=0.02, total=40),
]


@pytest.mark.parametrize("sched", ALL_SCHEDULES, ids=repr)
def test_call_is_the_affine_map(sched):
    for t in range(60):
        scale, shift = sched.affine(t)
        for lr0 in (*GROUP_LRS, 1.0, 0.5):
            assert sched(t, lr0) == scale * lr0 + shift
            assert close(sched(t, lr0), sched.min_lr + (lr0 - sched.min_lr) * sched.factor(t))


@pytest.mark.parametrize("sched", ALL_SCHEDULES, ids=repr)
def test_factor_is_one_at_start(sched):
    assert sched.factor(0) == 1.0
    assert sched(0, 0.1) == pytest.approx(0.1, rel=1e-15)


def test_min_lr_is_zero_without_a_floor():
    for sched in ALL_SCHEDULES[:-1]:
        assert sched.min_lr == 0.0
        assert sched.affine(5)[1] == 0.0


# ---------------------------------------------------------------------------------------------------------------
# bind and check_lr
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 17, 1000])
def test_cosine_bind_fills_total(length):
    bound = CosineDecay(min_lr=0.01).bind(length)
    assert bound == CosineDecay(min_lr=0.01, total=length)
    assert bound(length, 0.1) == pytest.approx(0.01, rel=1e-12)


@pytest.mark.parametrize("length", [None, 0, -3])
def test_cosine_bind_without_a_length_names_total(length):
    with pytest.raises(ConfigValueError, match="`total`") as info:
        CosineDecay().bind(length)
    assert info.value.key == "total"


@pytest.mark.parametrize("length", [None, 5, 500])
def test_cosine_bind_keeps_an_explicit_total(length):
    sched = CosineDecay(total=30)
    assert sched.bind(length) is sched


def test_cosine_unbound_refuses_to_run():
    with pytest.raises(RuntimeError, match="bind"):
        CosineDecay()(3, 0.1)


@pytest.mark.parametrize("sched", [Constant(), StepDecay(), MultiStepDecay(), ExponentialDecay(), TimeBasedDecay()])
def test_bind_is_identity_without_a_length(sched):
    assert sched.bind(None) is sched
    assert sched.bind(100) is sched


def test_check_lr_min_lr_above_lr0():
    CosineDecay(min_lr=0.1, total=5).check_lr(0.1)
    StepDecay().check_lr(1e-9)
    with pytest.raises(ConfigValueError, match="`min_lr`") as info:
        CosineDecay(min_lr=0.2, total=5).check_lr(0.1)
    assert info.value.key == "min_lr"


# ---------------------------------------------------------------------------------------------------------------
# Bad arguments, one key at a time
# ---------------------------------------------------------------------------------------------------------------

VALID = {
    StepDecay: dict(step_size=3, gamma=0.5),
    MultiStepDecay: dict(milestones=[2, 5], gamma=0.1),
    ExponentialDecay: dict(gamma=0.9),
    TimeBasedDecay: dict(decay=0.1, decay_steps=2, staircase=False),
    CosineDecay: dict(min_lr=0.0, total=10),
}

BAD_GAMMAS = [0, 0.0, -0.5, 1.5, math.nan, math.inf, -math.inf, True, "0.5", None]

BAD = [
    *[(cls, "gamma", g, "gamma") for cls in (StepDecay, MultiStepDecay, ExponentialDecay) for g in BAD_GAMMAS],
    *[(StepDecay, "step_size", v, "step_size") for v in (0, -1, 2.5, True, "3", None)],
    (MultiStepDecay, "milestones", [], "milestones"),
    (MultiStepDecay, "milestones", [5, 3], "milestones"),
    (MultiStepDecay, "milestones", [3, 3], "milestones"),
    (MultiStepDecay, "milestones", [0, 2], "milestones[0]"),
    (MultiStepDecay, "milestones", [2, 4.5], "milestones[1]"),
    (MultiStepDecay, "milestones", [1, True], "milestones[1]"),
    *[(TimeBasedDecay, "decay", v, "decay") for v in (-1, -1e-9, math.nan, math.inf, True)],
    *[(TimeBasedDecay, "decay_steps", v, "decay_steps") for v in (0, -2, 1.5, True)],
    *[(CosineDecay, "min_lr", v, "min_lr") for v in (-1, -1e-12, math.nan, math.inf)],
    *[(CosineDecay, "total", v, "total") for v in (0, -5, 2.5, True)],
]


def _id(x: object) -> str:
    return x.__name__ if isinstance(x, type) else repr(x)


@pytest.mark.parametrize(("cls", "key", "value", "named"), BAD, ids=_id)
def test_bad_argument_names_its_key(cls, key, value, named):
    cls(**VALID[cls])  # the config is valid before the one key is broken
    with pytest.raises(ConfigValueError) as info:
        cls(**{**VALID[cls], key: value})
    assert info.value.key == named
    assert f"`{named}` must be " in str(info.value)
    assert repr(value) in str(info.value) or key == "milestones"


@pytest.mark.parametrize(
    ("cls", "key", "value"),
    [
        (StepDecay, "gamma", 1.0),
        (StepDecay, "gamma", 1e-9),
        (StepDecay, "step_size", 1),
        (MultiStepDecay, "milestones", [1]),
        (TimeBasedDecay, "decay", 0.0),
        (TimeBasedDecay, "decay_steps", 1),
        (CosineDecay, "min_lr", 0.0),
        (CosineDecay, "total", 1),
        (CosineDecay, "total", None),
        (ExponentialDecay, "gamma", 1),
    ],
    ids=_id,
)
def test_boundary_values_are_accepted(cls, key, value):
    cls(**{**VALID[cls], key: value})


def test_config_value_error_message_and_pickle():
    err = ConfigValueError("gamma", 1.5, "in (0, 1]")
    assert isinstance(err, ValueError)
    assert str(err) == "`gamma` must be in (0, 1], got 1.5"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ConfigValueError
    assert str(back) == str(err)
    assert (back.key, back.value, back.allowed) == ("gamma", 1.5, "in (0, 1]")
    assert str(err.under("schedule")) == "`schedule.gamma` must be in (0, 1], got 1.5"


def test_schedule_error_survives_pickle():
    with pytest.raises(ConfigValueError) as info:
        StepDecay(gamma=1.5)
    back = pickle.loads(pickle.dumps(info.value))
    assert str(back) == str(info.value) == "`gamma` must be in (0, 1], got 1.5"


def test_schedules_are_frozen_and_picklable():
    for sched in ALL_SCHEDULES:
        assert pickle.loads(pickle.dumps(sched)) == sched
        with pytest.raises(AttributeError):
            sched.min_lr = 0.5


# ---------------------------------------------------------------------------------------------------------------
# Docstring examples
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [lrsched_pl.schedules, lrsched_pl.plateau], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_module_docstring_example():
    sched = StepDecay(step_size=2, gamma=0.5)
    assert [sched(t, lr0=0.1) for t in range(5)] == [0.1, 0.1, 0.05, 0.05, 0.025]
