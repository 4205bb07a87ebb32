"""Sweeps as a user runs them: launchers, Optuna searches, experiments, the per-job lines and the summary."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TinyModule, f32_equal, make_trainer, read_scalars
from omegaconf import OmegaConf

TINY = ["trainer.max_epochs=2", "trainer.limit_train_batches=3"]
FAULT = ["+callbacks.fault._target_=faults.Fault"]  # tests/faults.py: a job that raises or is killed on purpose
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}


def run_train(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=ENV
    )


def job_dirs(sweep: Path) -> list[Path]:
    """The sweep's job dirs: those holding TensorBoard events (not report/ or results/)."""
    return sorted(p for p in sweep.iterdir() if p.is_dir() and list(p.glob("events.out.tfevents.*")))


def final(run: Path, tag: str = "val/loss") -> float:
    return read_scalars(run, tag)[-1][1]


def compose_with_hydra(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.slow
def test_a_sweep_prints_one_line_per_job_then_the_best_job_report_and_tensorboard(tmp_path: Path) -> None:
    """Four jobs, two of which raise at their second step: a line each, and a summary although Hydra re-raises
    the failure at the end (and skips its own end-of-sweep callback)."""
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m", "schedule=step", "schedule.step_size=1", "schedule.gamma=0.5,0.1", *FAULT,
        "+callbacks.fault.action=none,raise", "+callbacks.fault.at_step=1", *TINY, f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra.job.num}",
    )  # fmt: skip
    assert proc.returncode == 1 and "injected failure at step 1" in proc.stderr
    out = proc.stdout
    runs = {p.name: final(p) for p in job_dirs(sweep) if p.name in ("0", "2")}  # gamma 0.5 and 0.1, no fault
    assert sorted(runs) == ["0", "2"]
    for num in runs:
        line = re.search(rf"#{num} {num}  val/loss=(\S+)  job time \d+\.\d s", out)
        assert line, out
        assert float(line.group(1)) == pytest.approx(runs[num], rel=1e-3)  # the value TensorBoard holds
    assert re.search(r"#1 1  FAILED RuntimeError: injected failure at step 1  job time", out)
    assert "Sweep finished: 4 jobs: 2 finished, 2 failed, 0 interrupted, 0 not started" in out
    best_num = min(runs, key=runs.get)
    best = yaml.safe_load((sweep / "best_job.yaml").read_text())
    assert Path(best["dir"]).name == best_num and best["value"] == pytest.approx(runs[best_num], rel=1e-6)
    assert best["config"]["schedule"]["gamma"] == {"0": 0.5, "2": 0.1}[best_num]  # its whole config
    assert f"Best (minimize val/loss): #{best_num} {best_num}" in out
    md = (sweep / "report" / "report.md").read_text()
    assert "training time (s)" in md and "- 1: failed (RuntimeError: injected failure at step 1)" in md
    assert f"Report: {sweep / 'report' / 'report.md'}" in out and (sweep / "report" / "lr.png").is_file()
    assert f"TensorBoard: tensorboard --logdir {sweep}" in out
    assert "Trainable params" not in out and "Epoch 1/1" not in out  # no model summary, no progress bar
    assert "GPU available" not in out + proc.stderr  # Lightning's info lines are silenced in sweeps


@pytest.mark.slow
def test_a_single_run_shows_the_rich_progress_bar_and_each_log_line_once(tmp_path: Path) -> None:
    proc = run_train(*TINY, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "Epoch 1/1" in out and "━" in out  # rich's bar, not tqdm's
    assert "Trainable params" in out
    assert out.count("GPU available") == 1  # Lightning's own handler and Hydra's printed it twice
    assert not (tmp_path / "run" / "results").exists()  # per-job results are a sweep's


@pytest.mark.slow
def test_submitit_local_runs_a_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m", "schedule=constant,cosine", "schedule.interval=step", *TINY, "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in job_dirs(sweep)] == ["0", "1"]
    assert (sweep / ".submitit").is_dir()  # the jobs went through submitit
    cosine = [v for _, v in read_scalars(sweep / "1", "lr-SGD")]
    assert len(cosine) == 6 and f32_equal(cosine[3], 0.1 * (1 + math.cos(math.pi * 3 / 6)) / 2)
    assert "Sweep finished: 2 jobs: 2 finished, 0 failed, 0 interrupted, 0 not started" in proc.stdout


@pytest.mark.slow
def test_an_optuna_search_finds_prints_and_writes_its_best_trial(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_train("hparams_search=step_optuna", "hydra.sweeper.n_trials=3", *TINY, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = {p: final(p) for p in job_dirs(sweep)}
    assert len(trials) == 3
    best_dir = min(trials, key=trials.get)
    optuna = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert optuna["best_value"] == pytest.approx(trials[best_dir], rel=1e-6)
    best = yaml.safe_load((sweep / "best_job.yaml").read_text())
    assert Path(best["dir"]) == best_dir and best["value"] == pytest.approx(optuna["best_value"])
    chosen = dict(o.split("=", 1) for o in best["overrides"])
    for key, value in optuna["best_params"].items():
        assert yaml.safe_load(chosen[key]) == value
    assert best["config"]["schedule"]["step_size"] == optuna["best_params"]["schedule.step_size"]
    assert "Best value:" in proc.stdout + proc.stderr and "Best (minimize val/loss)" in proc.stdout


@pytest.mark.parametrize(
    ("experiment", "jobs"), [("compare_schedules", 7 * 3), ("adaptive_optimizers", 4 * 2 * 3)]
)
def test_experiments_expand_to_their_jobs_and_every_job_is_valid(experiment: str, jobs: int) -> None:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from lrsched_pl.config import validate

    cfg = compose_with_hydra(f"experiment={experiment}")
    assert cfg.hydra.mode.name == "MULTIRUN"  # no -m needed
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), max_batch_size=None)
    assert len(batch) == jobs
    for overrides in batch:
        job = compose_with_hydra(f"experiment={experiment}", *overrides)
        validate(job)
        assert job.seed in (1, 2, 3) and job.trainer.max_epochs == 20


def test_optuna_searches_follow_the_objective_direction() -> None:
    assert compose_with_hydra("hparams_search=cosine_optuna").hydra.sweeper.direction == "minimize"
    cfg = compose_with_hydra("hparams_search=step_optuna", "objective=val/acc", "objective_direction=maximize")
    assert cfg.hydra.sweeper.direction == "maximize"


@pytest.mark.slow
def test_compare_schedules_runs_in_parallel_and_its_report_compares_the_schedules(tmp_path: Path) -> None:
    """The issue's "done when": the experiment under joblib, then the report on its dir (also written at the end)."""
    sweep = tmp_path / "sweep"
    proc = run_train("experiment=compare_schedules", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY,
                     f"hydra.sweep.dir={sweep}", "hydra.job.config.override_dirname.exclude_keys="
                     "[experiment,trainer.max_epochs,trainer.limit_train_batches]", timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(job_dirs(sweep)) == 21 and "Sweep finished: 21 jobs: 21 finished, 0 failed" in proc.stdout
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout
    results = [yaml.safe_load(p.read_text()) for p in (sweep / "results").glob("*.yaml")]
    assert len({r["pid"] for r in results}) == 2  # two worker processes ran the jobs
    runs = sorted(p.name for p in job_dirs(sweep))  # the basic launcher's layout: dirs named after the overrides
    assert runs[:3] == ["schedule=constant,seed=1", "schedule=constant,seed=2", "schedule=constant,seed=3"]
    lrs = [v for _, v in read_scalars(sweep / "schedule=exponential,seed=2", "lr-SGD")]
    assert len(lrs) == 6 and all(f32_equal(v, 0.1 * 0.9 ** (k // 3)) for k, v in enumerate(lrs))  # per epoch
    table = (sweep / "report" / "report.md").read_text()
    for schedule in ("constant", "step", "time_based", "time_based_epoch", "exponential", "cosine", "plateau"):
        assert f"schedule={schedule} " in table or f"schedule={schedule}|" in table.replace(" |", "|"), schedule
    for figure in ("lr.png", "val_loss.png", "val_acc.png", "final_metric.png"):
        assert (sweep / "report" / figure).stat().st_size > 10_000


def test_the_slurm_launcher_needs_one_task_per_device() -> None:
    from lrsched_pl.errors import ConfigValueError
    from lrsched_pl.launch import check_launch

    slurm = OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                              "tasks_per_node": 4, "nodes": 2})  # fmt: skip
    ok = OmegaConf.create({"trainer": {"accelerator": "gpu", "devices": 4, "num_nodes": 2, "strategy": "ddp"}})
    check_launch(ok, multirun=True, launcher=slurm)  # SLURM starts the 8 ranks: allowed with plain ddp
    with pytest.raises(ConfigValueError, match=r"`hydra.launcher.tasks_per_node` must be 2, equal to trainer.devices"):
        check_launch(OmegaConf.merge(ok, {"trainer": {"devices": 2}}), multirun=True, launcher=slurm)
    with pytest.raises(ConfigValueError, match=r"`hydra.launcher.nodes` must be 1, equal to trainer.num_nodes"):
        check_launch(OmegaConf.merge(ok, {"trainer": {"num_nodes": 1}}), multirun=True, launcher=slurm)
    with pytest.raises(ConfigValueError, match=r"`trainer.devices` must be a number of devices per node"):
        check_launch(OmegaConf.merge(ok, {"trainer": {"devices": "auto"}}), multirun=True, launcher=slurm)


@pytest.mark.slow
def test_a_slurm_sweep_whose_tasks_do_not_match_is_refused_before_submission(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    base = ["-m", "hydra/launcher=submitit_slurm", "trainer.devices=2", "trainer.strategy=ddp"]
    base.append(f"hydra.sweep.dir={sweep}")
    proc = run_train(*base)
    assert proc.returncode != 0 and "no job launched" in proc.stderr
    assert "`hydra.launcher.tasks_per_node` must be 2" in proc.stderr and not sweep.exists()
    # passes our check, then meets a machine without SLURM: a PATH with no srun/sbatch, whatever this machine has
    no_slurm = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    matched = subprocess.run([sys.executable, "train.py", *base, "hydra.launcher.tasks_per_node=2"], cwd=ROOT,
                             env=no_slurm, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "no job launched" not in matched.stderr and 'Could not detect "srun"' in matched.stderr


def test_every_run_writes_the_custom_scalars_layout(compose, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    from lrsched_pl.run import train

    train(compose("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false"))
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    (event,) = acc.Tensors(metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    (category,) = layout.category
    charts = {chart.title: list(chart.multiline.tag) for chart in category.chart}
    assert category.title == "lrsched_pl" and set(charts) == {
        "learning rate", "validation loss", "validation accuracy", "training loss"
    }  # fmt: skip
    lr = re.compile(charts["learning rate"][0])
    assert lr.match("lr-SGD") and lr.match("lr-Adam/pg1") and not lr.match("lr-SGD-momentum")
    tags = set(acc.Tags()["scalars"])
    for (regex,) in charts.values():
        assert any(re.match(regex, tag) for tag in tags), regex  # each chart has a curve of this run


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["schedule=step", "schedule.gamma=0.5,1.5"],
         "job #1 (schedule=step schedule.gamma=1.5): `schedule.gamma` must be in (0, 1], got 1.5"),
        (["schedule=step,stepp"], "job #1 (schedule=stepp): MissingConfigException: In 'train': Could not find"),
        (["schedule=step,cosine", "hydra.sweep.subdir=same"],
         "`hydra.sweep.subdir` must be different for every job, but jobs #0 (schedule=step) and #1 (schedule=cosine)"),
        (["objective=val/nonexistent"], "`objective` must be a metric the default model logs: val/loss, val/acc"),
    ],
)  # fmt: skip
def test_one_bad_job_refuses_the_sweep_before_anything_starts(tmp_path: Path, overrides, message) -> None:
    sweep = tmp_path / "sweep"
    proc = run_train("-m", *overrides, f"hydra.sweep.dir={sweep}")
    (line,) = proc.stderr.strip().splitlines()  # one line, no traceback
    assert proc.returncode == 1 and line.startswith("Error in the sweep, no job launched: ") and message in line
    assert proc.stdout == "" and not sweep.exists()  # no summary, no directory, nothing trained


def test_the_objective_is_checked_at_the_first_validation() -> None:
    from lrsched_pl.errors import ConfigValueError
    from lrsched_pl.objective import ObjectiveCheck

    trainer = make_trainer(Path("/nonexistent"), [ObjectiveCheck("val/acc")], logger=False, max_epochs=2)
    with pytest.raises(ConfigValueError, match=r"`objective` must be a metric this run logs: val/loss, got 'val/acc'"):
        trainer.fit(TinyModule())
    assert trainer.current_epoch == 0  # at the end of the first epoch's validation, not the run's end
    make_trainer(Path("/nonexistent"), [ObjectiveCheck("val/loss")], logger=False, max_epochs=1).fit(TinyModule())


@pytest.fixture(scope="module")
def val_acc_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], subprocess.CompletedProcess]:
    """The README's ``objective=val/acc`` recipe: a "/" in an override value, 2 jobs."""
    sweep = tmp_path_factory.mktemp("val_acc") / "sweep"
    args = ["-m", "schedule=constant,step", "objective=val/acc", "objective_direction=maximize", *TINY,
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    return sweep, args, run_train(*args)


@pytest.mark.slow
def test_a_val_acc_sweep_has_flat_job_dirs_and_writes_its_report(val_acc_sweep) -> None:
    sweep, _, proc = val_acc_sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in job_dirs(sweep)] == [
        f"objective=val_acc,objective_direction=maximize,schedule={s},trainer.limit_train_batches=3,"
        "trainer.max_epochs=2" for s in ("constant", "step")
    ]  # one level: no objective=val/ directory
    assert "Sweep finished: 2 jobs: 2 finished, 0 failed, 0 interrupted, 0 not started" in proc.stdout
    from lrsched_pl.report import write_report

    report = write_report(sweep, console=False, metric="val/acc")
    assert len(report.rows) == 2 and report.missing == [] and (sweep / "report" / "report.md").is_file()
    accs = [row.final["val/acc"].mean for row in report.rows]
    assert accs == sorted(accs, reverse=True)


@pytest.mark.slow
def test_a_second_sweep_into_the_same_dir_is_refused_and_the_same_one_keeps_its_jobs(val_acc_sweep) -> None:
    sweep, args, first = val_acc_sweep
    assert first.returncode == 0
    before = sorted(p for p in sweep.rglob("*") if p.is_file() and "report" not in p.parts)
    other = run_train("-m", "schedule=cosine,step", *TINY, f"hydra.sweep.dir={sweep}")
    assert other.returncode == 1 and other.stdout == ""
    assert "`hydra.sweep.dir` must be a directory that holds no other sweep" in other.stderr
    assert sorted(p for p in sweep.rglob("*") if p.is_file() and "report" not in p.parts) == before

    again = run_train(*args)  # the same command: both jobs finished, none trains again
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("(finished before: kept)") == 2
    assert all(len(list(d.glob("events.out.tfevents.*"))) == 1 for d in job_dirs(sweep))


@pytest.mark.slow
def test_a_joblib_sweep_with_a_raising_job_and_a_killed_worker_reports_both_as_failed(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_train("-m", *FAULT, "+callbacks.fault.action=raise,kill", "+callbacks.fault.at_step=4", *TINY,
                     "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.subdir=${hydra.job.num}",
                     f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Sweep finished: 2 jobs: 0 finished, 2 failed, 0 interrupted, 0 not started" in proc.stdout
    assert "failed: #0 0  FAILED RuntimeError: injected failure at step 4" in proc.stdout
    assert "failed: #1 1  FAILED TerminatedWorkerError: its joblib worker was killed" in proc.stdout
    assert "Traceback" not in proc.stderr  # the summary says it all, no joblib traceback after it
    md = (sweep / "report" / "report.md").read_text()
    assert "Jobs: 2 jobs: 0 finished, 2 failed, 0 interrupted, 0 not started." in md  # counted in the report too
    assert "0: failed (RuntimeError: injected failure at step 4)" in md  # under Incomplete: it has a val/loss
    assert "1: failed (TerminatedWorkerError: its joblib worker was killed" in md


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_says_so_and_the_same_command_completes_it(tmp_path: Path) -> None:
    """SIGTERM while job #1 trains (after its first checkpoint); the same command then keeps #0, resumes #1."""
    sweep = tmp_path / "sweep"
    args = ["-m", "schedule=constant,cosine", "trainer.max_epochs=4", "trainer.limit_train_batches=5",
            "hydra.sweep.subdir=${hydra.job.num}", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    while not (sweep / "1" / "checkpoints" / "last.ckpt").is_file() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    assert "Sweep interrupted (SIGTERM): 2 jobs: 1 finished, 0 failed, 1 interrupted, 0 not started" in out
    assert "Continue it: python train.py -m schedule=constant,cosine" in out

    again = run_train(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "#0 0  val/loss=" in again.stdout and "(finished before: kept)" in again.stdout
    assert f"#1 resumes from {sweep / '1' / 'checkpoints' / 'last.ckpt'}" in again.stdout
    assert "Sweep finished: 2 jobs: 2 finished, 0 failed, 0 interrupted, 0 not started" in again.stdout
    assert len(list((sweep / "0").glob("events.out.tfevents.*"))) == 1  # #0 ran once
    lrs = read_scalars(sweep / "1", "lr-SGD")  # #1: 20 steps, each once, as an uninterrupted cosine run has them
    assert [step for step, _ in lrs] == list(range(20))
    assert all(f32_equal(lr, 0.1 * (1 + math.cos(math.pi * k / 20)) / 2) for k, lr in lrs)


def test_a_sweep_dir_another_sweep_is_writing_to_is_refused(tmp_path: Path, capsys) -> None:
    from lrsched_pl.sweep import SweepSummary

    first = SweepSummary()
    first._claim(tmp_path)  # held for the sweep's whole run (flock on results/.lock)
    with pytest.raises(SystemExit) as exit_info:
        SweepSummary()._claim(tmp_path)
    assert exit_info.value.code == 1
    assert "another sweep is running there now" in capsys.readouterr().err
    first._lock.close()  # the first sweep ends: the directory can be claimed again
    SweepSummary()._claim(tmp_path)
