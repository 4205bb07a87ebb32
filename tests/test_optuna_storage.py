"""Optuna studies that persist: `hparams_search=...` keeps its study in SQLite (or any SQLAlchemy URL), a rerun
continues it without replaying its points, two processes share one study (SQLite, and PostgreSQL on a throw-away
cluster started here), and a failed trial is recorded as failed. Real Hydra sweeps, real Optuna storages."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

optuna = pytest.importorskip("optuna")
TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def search(*args: str, flags: tuple[str, ...] = ()) -> list[str]:
    """``python train.py <flags> hparams_search=step_optuna <args>`` with tiny jobs."""
    return [sys.executable, "train.py", *flags, "hparams_search=step_optuna", *TINY, *args]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def trials(storage: str, name: str = "step_optuna") -> list:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def points(study_trials: list) -> set[tuple]:
    return {tuple(sorted(t.params.items())) for t in study_trials}


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(search(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen]) -> list[str]:
    """Each process's output, once all have ended (each must succeed)."""
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    return [out + err for out, err in outputs]


def share(storage: str, tmp_path: Path) -> None:
    """Two sweeper processes, started together on one study with their own seeds, add 2 trials each."""
    finish([
        start("hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}", f"hydra.sweeper.sampler.seed={seed}",
              f"hydra.sweep.dir={tmp_path / f'worker{seed}'}")
        for seed in (1, 2)
    ])  # fmt: skip
    study = trials(storage)
    assert [t.state for t in study] == [optuna.trial.TrialState.COMPLETE] * 4
    assert len(points(study)) == 4 and sorted(t.number for t in study) == [0, 1, 2, 3]


@pytest.mark.slow
def test_a_study_kept_next_to_its_sweep_is_continued_by_a_rerun_and_shared_by_two_processes(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"  # the search's default: <sweep dir>/../study.db
    finish([start("hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'run1'}")])
    first = trials(storage)
    assert [t.state for t in first] == [optuna.trial.TrialState.COMPLETE] * 2
    # the same command again (sampler.seed 0), and at the same time a second worker with its own seed
    again, other = finish([
        start("hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'run2'}"),
        start("hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.seed=1", f"hydra.sweep.dir={tmp_path / 'run3'}"),
    ])  # fmt: skip
    for output in (again, other):
        assert "Using an existing study with name 'step_optuna'" in output
    assert re.search(r"Study 'step_optuna' has \d+ trials: sampler seed 0 \+ \d+", again)  # moved past the first run
    study = trials(storage)
    assert [t.state for t in study] == [optuna.trial.TrialState.COMPLETE] * 6 and sorted(t.number for t in study) == [
        0, 1, 2, 3, 4, 5
    ]  # fmt: skip
    assert len(points(study)) == 6  # the rerun did not replay the first run's points, nor the workers each other's
    # the stored values are what the runs' jobs returned
    returned = [yaml.safe_load(p.read_text())["value"] for p in tmp_path.glob("run*/results/*.yaml")]
    assert sorted(t.value for t in study) == pytest.approx(sorted(returned), rel=1e-6)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL 15 cluster on 127.0.0.1 (trust auth), as the ``postgres`` user when run as root."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (the `sweeps` extra)")
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN} (Debian's postgresql-15)")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = Path(tempfile.mkdtemp(prefix="lrsched-pg-"))  # not under pytest's tmp dir, which only root may enter
    if as_user:
        shutil.chown(data, "postgres")
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    init = subprocess.run([*as_user, PG_BIN / "initdb", "-D", data / "db", "-A", "trust", "-U", "postgres"],
                          capture_output=True, text=True)  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr[-300:]}")
    options = f"-h 127.0.0.1 -p {port} -k {data}"
    pg_ctl = [*as_user, PG_BIN / "pg_ctl", "-D", data / "db"]
    started = subprocess.run([*pg_ctl, "-o", options, "-l", data / "log", "-w", "start"], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {(data / 'log').read_text()[-300:]}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_two_processes_share_one_postgresql_study(postgres: str, tmp_path: Path) -> None:
    share(postgres, tmp_path)


@pytest.mark.slow
def test_a_failed_trial_is_recorded_as_failed_and_the_other_trials_finish(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = run(search(
        "hydra.sweeper.params=null", "schedule.gamma=choice(0.5,1.5)", "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=4", "hydra.sweeper.max_failure_rate=1.0", f"hydra.sweeper.storage={storage}",
        f"hydra.sweep.dir={tmp_path / 'run'}",
        flags=("-m",),  # a sweep override on the command line (choice) needs -m
    ))  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]  # the search goes on (max_failure_rate); a failed job -> exit 1
    study = trials(storage)
    failed = [t for t in study if t.params["schedule.gamma"] == 1.5]  # refused by the job: `schedule.gamma` > 1
    completed = [t for t in study if t.params["schedule.gamma"] == 0.5]
    assert failed and completed and len(failed) + len(completed) == 4  # seed 0 draws both values
    assert all(t.state == optuna.trial.TrialState.FAIL and t.value is None for t in failed)
    assert all(t.state == optuna.trial.TrialState.COMPLETE and t.value > 0 for t in completed)
    assert f"Sweep finished: 4 jobs: {4 - len(failed)} finished, {len(failed)} failed" in proc.stdout + proc.stderr
