"""Sweeps on a real SLURM cluster (the single-node one `.ci/slurm_up.sh` starts; skipped where none answers): jobs,
events, summary and report; a DDP job with one SLURM task per rank; a preempted job that requeues itself and ends
exactly like an uninterrupted one; a cancelled job reported as failed while the others finish."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, f32_equal, read_scalars

PARTITION = os.environ.get("LRSCHED_SLURM_PARTITION", "debug")
SLURM = ["hydra/launcher=submitit_slurm", f"hydra.launcher.partition={PARTITION}", "hydra.launcher.timeout_min=30"]
TINY = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1"]


def no_cluster() -> str | None:
    """Why no SLURM cluster can run the tests here, or ``None`` when ``sinfo`` and ``sacct`` answer."""
    if shutil.which("sinfo") is None or shutil.which("sacct") is None:
        return "no SLURM client (sinfo, sacct) on PATH; start a local cluster with .ci/slurm_up.sh (as root)"
    try:
        nodes = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%T"], capture_output=True, text=True, timeout=30)
        sacct = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo/sacct did not answer within 30 s; start a local cluster with .ci/slurm_up.sh"
    if nodes.returncode != 0 or not {"idle", "mixed", "allocated"} & set(nodes.stdout.split()):
        why = (nodes.stderr or nodes.stdout).strip()[-200:] or "no node"
        return f"no SLURM partition {PARTITION!r} with a usable node ({why}); start one with .ci/slurm_up.sh"
    if sacct.returncode != 0:  # submitit polls job states with sacct: without accounting a killed job hangs a sweep
        return f"SLURM accounting does not answer ({sacct.stderr.strip()[-200:]}); .ci/slurm_up.sh starts slurmdbd"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    reason = no_cluster()
    if reason:
        pytest.skip(reason)


def train(*args: str, pythonpath: bool = False) -> subprocess.Popen:
    """``python train.py *args`` from the repository, started in the background (tests/ importable if asked)."""
    env = dict(os.environ)
    if pythonpath:  # the jobs inherit the environment of sbatch: rank_models imports in them too
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "tests"), str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def finish(proc: subprocess.Popen, timeout: int = 300) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def wait_for(path_glob: Path, timeout: float = 180) -> Path:
    """The first file matching ``path_glob``, waiting for it to appear."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = sorted(path_glob.parent.glob(path_glob.name))
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"{path_glob} did not appear within {timeout} s")


def slurm_job(sweep: Path, index: int) -> str:
    """The SLURM id (``<array id>_<index>``) of the sweep's job ``index``, from submitit's folder for it."""
    return wait_for(sweep / ".submitit" / f"*_{index}").name


def sacct_states(job: str, final: str = "COMPLETED", timeout: float = 30) -> list[str]:
    """Every state SLURM accounted for ``job``, requeued runs included (``--duplicates``), once the last is ``final``
    (slurmctld reports to slurmdbd a moment after a job ends); as they are after ``timeout`` seconds otherwise."""
    end = time.monotonic() + timeout
    while True:
        args = ["sacct", "-n", "-X", "-D", "-P", "-j", job, "-o", "State"]
        states = subprocess.run(args, capture_output=True, text=True).stdout.split("\n")[:-1]
        if (states and states[-1].startswith(final)) or time.monotonic() > end:
            return states
        time.sleep(0.5)


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and list(p.glob("events.out.tfevents.*")))


@pytest.mark.slow
def test_a_sweep_runs_as_a_slurm_job_array(cluster: None, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = train("-m", "schedule=constant,exponential", *SLURM, *TINY, f"hydra.sweep.dir={sweep}",
                 "hydra.job.config.override_dirname.exclude_keys=[trainer.max_epochs,trainer.limit_train_batches,"
                 "trainer.limit_val_batches]")  # fmt: skip
    rc, output = finish(proc)
    assert rc == 0, output[-3000:]
    assert "Sweep finished: 2 jobs: 2 finished, 0 failed" in output
    assert [p.name for p in job_dirs(sweep)] == ["schedule=constant", "schedule=exponential"]
    # both jobs ran as tasks of one SLURM array and SLURM accounted them as completed
    ids = sorted(p.name for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(ids) == 2 and ids[0].endswith("_0") and ids[1] == ids[0][:-1] + "1"
    assert all(sacct_states(job) == ["COMPLETED"] for job in ids)
    names = ("constant", "exponential")
    lrs = {name: [v for _, v in read_scalars(sweep / f"schedule={name}", "lr-SGD")] for name in names}
    assert len(lrs["constant"]) == 6 and all(f32_equal(v, 0.1) for v in lrs["constant"])
    assert len(lrs["exponential"]) == 6
    assert all(f32_equal(v, 0.1 * 0.9 ** (k // 3)) for k, v in enumerate(lrs["exponential"]))  # per epoch
    results = [yaml.safe_load(p.read_text()) for p in sorted((sweep / "results").glob("*.yaml"))]
    assert [r["status"] for r in results] == ["completed", "completed"]
    table = (sweep / "report" / "report.md").read_text()
    assert "schedule=constant" in table and "schedule=exponential" in table


@pytest.mark.slow
def test_a_ddp_job_runs_once_with_one_slurm_task_per_rank(cluster: None, tmp_path: Path) -> None:
    from rank_models import RANK_METRICS
    from test_ddp import EPOCHS, SHORT, STEPS_PER_EPOCH, plateau_lrs

    sweep = tmp_path / "sweep"
    proc = train(
        "-m", "schedule=plateau", "schedule.monitor=val/rank_metric", "schedule.patience=0",
        "model._target_=rank_models.RankMetricClassifier", "trainer.strategy=ddp", "trainer.devices=2",
        "hydra.launcher.tasks_per_node=2", *SLURM, *SHORT, f"trainer.max_epochs={EPOCHS}", f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=job", pythonpath=True,
    )  # fmt: skip
    rc, output = finish(proc)
    assert rc == 0, output[-3000:]
    assert "Sweep finished: 1 jobs: 1 finished, 0 failed" in output  # no rank re-ran the sweep
    assert job_dirs(sweep) == [sweep / "job"] and len(list((sweep / "results").glob("*.yaml"))) == 1
    (job,) = [p for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+(_0)?", p.name)]  # one job, two tasks
    assert len(list(job.glob("*_log.out"))) == 2 and sacct_states(job.name) == ["COMPLETED"]
    ranks = [json.loads((sweep / "job" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    lrs = [[lr for _, (lr,) in sorted(r["lrs"].items(), key=lambda kv: int(kv[0]))] for r in ranks]
    f32 = {r: [float(torch.tensor(m)) for m in RANK_METRICS[r]] for r in (0, 1)}
    mean = [(a + b) / 2 for a, b in zip(f32[0], f32[1])]
    assert lrs[0] == lrs[1] == plateau_lrs(mean) and len(lrs[0]) == EPOCHS * STEPS_PER_EPOCH
    assert ranks[0]["state"] == ranks[1]["state"]  # the plateau's state is the same on both ranks


@pytest.mark.slow
def test_a_timed_out_job_requeues_itself_and_ends_like_an_uninterrupted_one(cluster: None, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    # Two identical jobs: #0 is stopped mid-run, #1 runs through and is the reference. submitit counts a signal in a
    # job of at most 10 minutes as its time limit coming (a longer job's early signal is a preemption, always
    # requeued); max_num_timeout=1 allows one requeue after a time limit.
    limits = ["hydra.launcher.timeout_min=5", "hydra.launcher.max_num_timeout=1"]
    proc = train("-m", "seed=1,1", "schedule=cosine", "trainer.max_epochs=15", "trainer.limit_train_batches=4",
                 "trainer.limit_val_batches=1", *SLURM, *limits, f"hydra.sweep.dir={sweep}",
                 "hydra.sweep.subdir=${hydra.job.num}")  # fmt: skip
    wait_for(sweep / "0" / "checkpoints" / "last.ckpt")  # an epoch done: mid-run
    job = slurm_job(sweep, 0)
    # what SLURM sends signal_delay_s before the time limit (sbatch --signal=USR2@<signal_delay_s>)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    rc, output = finish(proc)
    assert rc == 0, output[-3000:]
    assert "Sweep finished: 2 jobs: 2 finished, 0 failed" in output
    assert sacct_states(job) == ["REQUEUED", "COMPLETED"]
    assert "this job is timed-out" in (sweep / ".submitit" / job / f"{job}_0_log.err").read_text()
    events = sorted((sweep / "0").glob("events.out.tfevents.*"), key=lambda p: int(p.name.split(".")[3]))
    assert len(events) >= 2  # both runs of the job wrote into its one dir
    restarted_at = min(step for step, _ in read_scalars(events[-1], "lr-SGD"))
    assert restarted_at > 0 and restarted_at % 4 == 0  # the requeued run went on from an epoch's last.ckpt
    assert sorted(p.name for p in job_dirs(sweep)) == ["0", "1"]
    reference = dict(read_scalars(sweep / "1", "lr-SGD"))
    resumed = read_scalars(sweep / "0", "lr-SGD")  # steps logged after last.ckpt and again after the resume repeat
    assert {step for step, _ in resumed} == set(reference) and len(reference) == 60
    assert all(value == reference[step] for step, value in resumed)
    final = [torch.load(sweep / run / "checkpoints" / "last.ckpt", weights_only=False) for run in ("0", "1")]
    assert final[0]["global_step"] == final[1]["global_step"] == 60
    assert final[0]["callbacks"]["ScheduleCallback"] == final[1]["callbacks"]["ScheduleCallback"]


@pytest.mark.slow
def test_a_cancelled_job_is_reported_as_failed_and_the_other_jobs_finish(cluster: None, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = train("-m", "trainer.max_epochs=2,60", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
                 *SLURM, f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}")  # fmt: skip
    wait_for(sweep / "1" / "checkpoints" / "last.ckpt")
    job = slurm_job(sweep, 1)
    subprocess.run(["scancel", job], check=True)
    rc, output = finish(proc)
    assert rc != 0  # Hydra ends a sweep with a failed job in an error, after the summary
    assert sacct_states(job, final="CANCELLED")[-1].startswith("CANCELLED")  # "CANCELLED by 0"
    assert "Sweep finished: 2 jobs: 1 finished, 1 failed" in output, output[-3000:]
    done = yaml.safe_load((sweep / "results" / "0.yaml").read_text())
    assert done["status"] == "completed" and len(read_scalars(sweep / "0", "lr-SGD")) == 6
    assert (sweep / "report" / "report.md").is_file(), output[-3000:]


def test_under_slurm_the_tasks_are_the_ranks_exactly_once() -> None:
    from omegaconf import OmegaConf

    from lrsched_pl.errors import ConfigValueError
    from lrsched_pl.launch import check_launch

    def check(strategy: str, devices: int, tasks: int, nodes: int = 1) -> None:
        launcher = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                    "tasks_per_node": tasks, "nodes": nodes}  # fmt: skip
        trainer = {"strategy": strategy, "devices": devices, "num_nodes": nodes, "accelerator": "cpu"}
        check_launch(OmegaConf.create({"trainer": trainer}), multirun=True, launcher=OmegaConf.create(launcher))

    check("ddp", devices=2, tasks=2)  # srun starts both ranks
    check("auto", devices=1, tasks=1)
    check("ddp_spawn", devices=1, tasks=1)  # one process: nothing spawned
    for strategy, tasks in (("ddp_spawn", 1), ("ddp_spawn", 2), ("ddp_fork", 1)):
        # spawned ranks would all read SLURM_PROCID=0 (seen on the local cluster: both bind rank 0's port)
        with pytest.raises(ConfigValueError, match=r"`trainer.strategy` must be ddp under hydra/launcher=submitit_sl"):
            check(strategy, devices=2, tasks=tasks)
    with pytest.raises(ConfigValueError, match=r"`hydra.launcher.tasks_per_node` must be 2, equal to trainer.devices"):
        check("ddp", devices=2, tasks=1)  # one rank only: the job would wait for the other forever
    with pytest.raises(ConfigValueError, match=r"`hydra.launcher.tasks_per_node` must be 1, equal to trainer.devices"):
        check("auto", devices=1, tasks=2)  # two copies of one job writing into one run dir
