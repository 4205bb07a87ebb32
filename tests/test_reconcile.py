"""The resume reconciliation on its own (lrsched_pl/reconcile.py): which lengths the schedules are bound to when a
checkpoint meets a run of the same or another length, with and without ``rebind``. The Trainer-level behaviour
(warnings, exact curves) is in test_resume.py and test_rebind.py."""

from __future__ import annotations

from lrsched_pl.reconcile import Binding, binding

TIMES = {"step": 10, "epoch": 2}
SAVED = {"lengths": {"step": 20, "epoch": 4}, "warps": []}


def test_a_fresh_start_binds_to_the_runs_own_lengths() -> None:
    assert binding(None, {"step": 20, "epoch": 4}, TIMES, rebind=True) == Binding({"step": 20, "epoch": 4})


def test_the_same_lengths_continue_the_checkpoints_binding() -> None:
    assert binding(SAVED, {"step": 20, "epoch": 4}, TIMES, rebind=False) == Binding({"step": 20, "epoch": 4})


def test_another_length_without_rebind_binds_anew() -> None:
    assert binding(SAVED, {"step": 30, "epoch": 6}, TIMES, rebind=False) == Binding({"step": 30, "epoch": 6})


def test_another_length_with_rebind_stretches_from_the_restored_time() -> None:
    got = binding(SAVED, {"step": 30, "epoch": 6}, TIMES, rebind=True)
    assert got == Binding({"step": 20, "epoch": 4}, [("step", 10, 20, 30), ("epoch", 2, 4, 6)])
    assert got.ends() == {"step": 30, "epoch": 6} and got.for_interval("step") == (20, [(10, 20, 30)])
    # resumed again at the same length: the stretch is kept, nothing added
    saved = {"lengths": got.first, "warps": [list(w) for w in got.warps]}
    assert binding(saved, {"step": 30, "epoch": 6}, {"step": 25, "epoch": 5}, rebind=True) == got


def test_an_unknown_length_now_or_one_the_schedules_ignore_keeps_the_checkpoints_binding() -> None:
    assert binding(SAVED, {"step": 40, "epoch": None}, TIMES, rebind=False) == Binding({"step": 40, "epoch": 4})
    ignores = binding(SAVED, {"step": 30, "epoch": 6}, TIMES, rebind=True, depends=lambda i, old, new: i == "epoch")
    assert ignores == Binding({"step": 20, "epoch": 4}, [("epoch", 2, 4, 6)])


def test_a_checkpoint_without_lengths_binds_to_the_run() -> None:  # written before lengths were saved
    assert binding({"base_lrs": [[0.1]]}, {"step": 30, "epoch": 6}, TIMES, rebind=True) == Binding({"step": 30, "epoch": 6})


def test_a_tampered_binding_in_the_checkpoint_is_refused_before_anything_is_restored() -> None:
    import pytest

    from lrsched_pl.checkpoint import CheckpointError, check_schedule_state

    for bad in ({"lengths": {"step": -3}}, {"lengths": [20]}, {"warps": [["step", 10, 20]]},
                {"warps": [["day", 1, 2, 3]]}, {"base_values": {"weight_decay": [[float("nan")]]}}):  # fmt: skip
        with pytest.raises(CheckpointError) as err:
            check_schedule_state({"base_lrs": [[0.1]], **bad})
        assert "\n" not in str(err.value)
    check_schedule_state({"base_lrs": [[0.1]], **SAVED, "base_values": {"momentum": [[0.9, None]]}})
