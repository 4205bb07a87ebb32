"""The time-to-target benchmark (issue #14): performance profiles, the trial configs, and its --tiny run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import ROOT

from benchmarks import time_to_target as ttt
from lrsched_pl.config import validate
from lrsched_pl.profiles import plot_profiles, profiles, ratios

INF = math.inf
SCORES = {"a": {"w1": 10.0, "w2": 40.0}, "b": {"w1": 20.0, "w2": 20.0}, "c": {"w1": INF, "w2": 30.0}}


def test_profiles_by_hand() -> None:
    """Ratios to the fastest per workload, then the share of workloads within tau (Dolan & Moré's definition)."""
    assert ratios(SCORES) == {"a": {"w1": 1.0, "w2": 2.0}, "b": {"w1": 2.0, "w2": 1.0}, "c": {"w1": INF, "w2": 1.5}}
    assert profiles(SCORES, [1.0, 1.4, 1.5, 2.0, 4.0]) == {
        "a": [0.5, 0.5, 0.5, 1.0, 1.0], "b": [0.5, 0.5, 0.5, 1.0, 1.0], "c": [0.0, 0.0, 0.5, 0.5, 0.5]}  # fmt: skip
    unsolved = {"a": {"w": INF}, "b": {"w": INF}}  # no arm reached the target: counts against all
    assert profiles(unsolved, [1.0, 4.0]) == {"a": [0.0, 0.0], "b": [0.0, 0.0]}


@pytest.mark.parametrize(
    ("scores", "message"),
    [({"a": {"w": 1.0}, "b": {}}, "method `b` has no score for workloads ['w']"),
     ({"a": {"w": 0.0}}, "scores must be > 0 (or inf), got {'w': 0.0} for `a`")],
)  # fmt: skip
def test_profiles_refuse_incomplete_or_non_positive_scores(scores: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        ratios(scores)
    assert str(error.value) == message


def test_profile_figure_is_written(tmp_path: Path) -> None:
    path = plot_profiles(SCORES, tmp_path / "p" / "profiles.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_time_to_target_is_the_first_validation_at_or_past_it() -> None:
    curve = [(10, 1.0, 0.5), (20, 2.0, float("nan")), (30, 3.0, 0.9), (40, 4.0, 0.95)]
    assert ttt.time_to(curve, 0.9, "max") == (30, 3.0)
    assert ttt.time_to(curve, 0.96, "max") == (INF, INF)
    assert ttt.time_to([(5, 0.5, 2.0), (9, 0.9, 1.5)], 1.5, "min") == (9, 0.9)


def test_trials_are_quasi_random_per_study_and_the_same_across_arms() -> None:
    first, again, other = ttt.points(0, 4), ttt.points(0, 4), ttt.points(1, 4)
    assert first == again and first != other
    assert all(0 <= u < 1 for p in first for u in p)
    # stratified: the 4 points of a study fall in 4 different quarters of the LR axis (Halton, base 2)
    assert sorted(int(4 * u) for u, _ in first) == [0, 1, 2, 3]
    workload = ttt.WORKLOADS["lm"]
    lrs = [ttt.trial_config(workload, ttt.ARMS["constant"], u, 101, 480)["optimizer"]["lr"] for u in first]
    assert all(1e-3 <= lr <= 1e-1 for lr in lrs)
    exponential = ttt.trial_config(workload, ttt.ARMS["exponential"], (0.5, 0.5), 101, 480)["schedule"]["gamma"]
    assert exponential**480 == pytest.approx(math.sqrt(1e-3 * 0.3))  # the final factor: log-uniform's midpoint


@pytest.mark.parametrize("workload", sorted(ttt.WORKLOADS))
def test_every_arms_trial_composes_and_validates(tmp_path: Path, workload: str) -> None:
    """Each arm's trial file, selected with +trial= as the benchmark does, gives a valid config for the workload."""
    from hydra import compose, initialize_config_dir

    spec = ttt.WORKLOADS[workload]
    for arm in ttt.ARMS:
        config = ttt.trial_config(spec, ttt.ARMS[arm], (0.3, 0.7), 101, spec.steps(1.0))
        ttt.write_trial(tmp_path, arm, config)
    overrides = [o for o in spec.overrides(1.0)]
    for arm in ttt.ARMS:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=[*overrides, f"+trial={arm}", f"hydra.searchpath=[file://{tmp_path}]",
                                              f"output_dir={tmp_path}"], return_hydra_config=False)  # fmt: skip
        assert cfg.schedule.name == ttt.ARMS[arm].schedule and cfg.seed == 101, arm
        validate(cfg)


@pytest.mark.slow
def test_tiny_run_scores_the_arms_draws_the_profiles_and_resumes(tmp_path: Path) -> None:
    argv = ["--tiny", "--workloads", "digits", "--arms", "constant,cosine", "--work", str(tmp_path / "work"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    path = ttt.main(argv)
    text = path.read_text()
    assert path.name == "time_to_target_tiny.md" and "**Budget used: `tiny`**: 1 trials × 1 studies" in text
    assert (tmp_path / "out" / "time_to_target_tiny" / "profiles.png").read_bytes()[:4] == b"\x89PNG"
    work = tmp_path / "work" / "tiny"
    target = json.loads((work / "targets.json").read_text())["digits"]
    job = ttt.completed_jobs(work / "digits" / "tune")[0]
    assert "+trial=constant_s0_t0" in job["overrides"]
    best = max(v for _, _, v in ttt.read_curve(job["dir"], "val/acc"))
    assert target == best  # one study: the target is the constant trial's best validation accuracy
    assert f"| {target:.4f} |" in text
    spent = json.loads((work / "spent.json").read_text())  # each sweep's cost, for the results' Cost line
    assert sorted(spent) == ["digits/heldout/part0", "digits/tune/part0"]
    assert all(v["cpu"] > 0 and v["wall"] > 0 for v in spent.values())
    assert f"{len(spent)} sweeps; **{sum(v['cpu'] for v in spent.values()) / 60:.1f} CPU-minutes**" in text
    parts = sorted(p.name for p in (work / "digits" / "tune").iterdir())
    ttt.main(argv)  # resumed: every trial finished, nothing launched again
    assert sorted(p.name for p in (work / "digits" / "tune").iterdir()) == parts == ["part0"]
    assert json.loads((work / "spent.json").read_text()) == spent


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--studies", "lm=0"], "--studies takes WORKLOAD=K with K >= 1 and a known workload, got 'lm=0'"),
     (["--arms", "cosine"], "the arms must include `constant`: it sets the targets"),
     (["--workloads", "imagenet"], "unknown workload ['imagenet']")],
)  # fmt: skip
def test_bad_command_lines_are_refused_before_any_sweep(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ttt.main([*argv, "--work", str(tmp_path / "work")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
