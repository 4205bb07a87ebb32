"""A run directory belongs to one run: unique default names, occupied directories refused, resumes in place."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, f32_equal, read_scalars
from omegaconf import OmegaConf

from lrsched_pl.errors import ConfigValueError
from lrsched_pl.rundir import check_run_dir, flat, register_resolvers, resume_dir

TINY = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false"]  # fmt: skip
FAULTS = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}  # tests/faults.py: a job that raises on purpose


def train(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # ROOT/train.py puts ROOT first on sys.path, so a run from another cwd still uses this checkout's code
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=FAULTS)  # fmt: skip


def events(run: Path) -> list[Path]:
    return sorted(run.glob("events.out.tfevents.*"))


def test_resolvers_name_flat_unique_and_resumed_directories(tmp_path: Path) -> None:
    register_resolvers()
    cfg = OmegaConf.create({"a": "${lrsched.run_id:}", "b": "${lrsched.run_id:}", "n": "objective=val/acc",
                            "f": "${lrsched.flat:${n}}"})  # fmt: skip
    assert cfg.a == cfg.b  # one id per process, like ${now:}
    assert len(cfg.a.split("-")) == 5 and len(cfg.a.split("-")[3]) == 3  # HH-MM-SS-mmm-xxxx
    assert cfg.f == "objective=val_acc" and flat("a/b/c") == "a_b_c"
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    assert resume_dir(str(run / "checkpoints" / "last.ckpt"), "new") == str(run)
    assert resume_dir(str(tmp_path / "elsewhere.ckpt"), "new") == "new" and resume_dir(None, "new") == "new"


def test_the_tasks_of_one_slurm_step_share_their_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from lrsched_pl.rundir import run_id

    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", "3")
    assert run_id() != "slurm-4242.3"  # one task: a run of its own, as anywhere else
    monkeypatch.setenv("SLURM_NTASKS", "2")
    assert run_id() == run_id() == "slurm-4242.3"  # every rank of the step resolves the same directory


def test_a_directory_holding_another_run_is_refused_unless_resumed(tmp_path: Path) -> None:
    check_run_dir(tmp_path / "new", None)
    (tmp_path / "other.txt").write_text("not a run")
    check_run_dir(tmp_path, None)  # a folder with unrelated files is not a run
    (tmp_path / "checkpoints").mkdir()
    check_run_dir(tmp_path, None)  # an empty checkpoints/ (a mount point made ready for the run) is not a run either
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ConfigValueError, match=r"`hydra.run.dir` must be a directory that holds no other run.*"
                       r"ckpt_path=.*checkpoints/last.ckpt"):  # fmt: skip
        check_run_dir(tmp_path, None)
    check_run_dir(tmp_path, tmp_path / "checkpoints" / "last.ckpt")  # the resume of that very run
    (tmp_path / "multirun.yaml").write_text("hydra: {}")
    with pytest.raises(ConfigValueError, match=r"`hydra.run.dir` must be a directory that holds no sweep"):
        check_run_dir(tmp_path, tmp_path / "checkpoints" / "last.ckpt")


@pytest.mark.slow
def test_two_runs_started_together_get_two_directories_with_one_event_file_each(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "train.py"), "schedule=step", *TINY]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "outputs" / "runs").glob("*/*_step"))
    assert len(runs) == 2, runs
    for run in runs:
        assert len(events(run)) == 1 and len(read_scalars(run, "lr-SGD")) == 6  # one run each: 2 epochs x 3 steps
        assert yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())[0] == "schedule=step"


@pytest.mark.slow
def test_a_resume_continues_its_own_run_without_repeating_a_step(tmp_path: Path) -> None:
    """Stopped by an error at step 7 (checkpoint at step 6, LRs logged up to 7), resumed with ckpt_path alone."""
    run = tmp_path / "run"
    cosine = ["schedule=cosine", "trainer.max_epochs=4", *TINY[1:], "callbacks.model_checkpoint.monitor=val/loss"]
    first = train(*cosine, "+callbacks.fault._target_=faults.Fault", "+callbacks.fault.action=raise",
                  "+callbacks.fault.at_step=7", f"hydra.run.dir={run}")  # fmt: skip
    assert first.returncode == 1 and "injected failure at step 7" in first.stderr
    assert [s for s, _ in read_scalars(run, "lr-SGD")] == list(range(8))  # steps 6 and 7 are past the checkpoint

    again = train(*cosine, f"hydra.run.dir={run}")
    assert again.returncode == 1 and "`hydra.run.dir` must be a directory that holds no other run" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and len(events(run)) == 1  # refused before writing

    resumed = train(*cosine, f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "won't be reloaded" not in resumed.stderr + resumed.stdout  # same dirpath: best_model_score reloaded
    assert not (tmp_path / "outputs").exists() and len(events(run)) == 2  # one run dir, one TensorBoard run
    lrs = read_scalars(run, "lr-SGD")
    assert [s for s, _ in lrs] == list(range(12))  # no step twice, none missing
    assert all(f32_equal(lr, 0.1 * (1 + math.cos(math.pi * k / 12)) / 2) for k, lr in lrs)
    assert [s for s, _ in read_scalars(run, "val/loss")] == [2, 5, 8, 11]


def test_a_checkpoint_of_a_run_picks_its_run_dir_unless_hydra_run_dir_is_given(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    register_resolvers()
    run = tmp_path / "outputs" / "multirun" / "x" / "schedule=step"  # a sweep job: its path holds "="
    (run / ".hydra").mkdir(parents=True)
    ckpt = f'ckpt_path="{run}/checkpoints/last.ckpt"'  # quoted, as the README shows
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        assert compose("train", [ckpt], return_hydra_config=True).hydra.run.dir == str(run)
        given = compose("train", [ckpt, f"hydra.run.dir={tmp_path / 'mine'}"], return_hydra_config=True)
        assert given.hydra.run.dir == str(tmp_path / "mine")
        new = compose("train", ["schedule=cosine"], return_hydra_config=True).hydra.run.dir
        assert new.startswith("outputs/runs/") and new.endswith("_cosine")
