"""Sweeps as a user runs them: launchers, Optuna searches, experiments, the per-job lines and the summary."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, f32_equal, read_scalars
from omegaconf import OmegaConf

TINY = ["trainer.max_epochs=2", "trainer.limit_train_batches=3"]


def run_train(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def job_dirs(sweep: Path) -> list[Path]:
    """The sweep's job dirs: those holding TensorBoard events (not report/ or results/)."""
    return sorted(p for p in sweep.iterdir() if p.is_dir() and list(p.glob("events.out.tfevents.*")))


def final(run: Path, tag: str = "val/loss") -> float:
    return read_scalars(run, tag)[-1][1]


def compose_with_hydra(*overrides: str):
    from hydra import compose, initialize_config_dir

    from lrsched_pl.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.slow
def test_a_sweep_prints_one_line_per_job_then_the_best_job_report_and_tensorboard(tmp_path: Path) -> None:
    """Three jobs, the middle one refused by the range check: a line each, and a summary although Hydra
    re-raises the failure at the end (and skips its own end-of-sweep callback)."""
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m", "schedule=step", "schedule.step_size=1", "schedule.gamma=0.5,1.5,0.1", *TINY,
        f"hydra.sweep.dir={sweep}", "hydra.job.config.override_dirname.exclude_keys=[schedule,schedule.step_size,"
        "trainer.max_epochs,trainer.limit_train_batches]",
    )  # fmt: skip
    assert proc.returncode != 0 and "`schedule.gamma` must be in (0, 1], got 1.5" in proc.stderr
    out = proc.stdout
    runs = {p.name: final(p) for p in job_dirs(sweep)}
    assert sorted(runs) == ["schedule.gamma=0.1", "schedule.gamma=0.5"]
    for num, name in ((0, "schedule.gamma=0.5"), (2, "schedule.gamma=0.1")):
        line = re.search(rf"#{num} {re.escape(name)}  val/loss=(\S+)  \d+\.\d s", out)
        assert line, out
        assert float(line.group(1)) == pytest.approx(runs[name], rel=1e-3)  # the value TensorBoard holds
    assert re.search(r"#1 schedule.gamma=1.5  FAILED ConfigValueError\(.*got 1.5.*\)", out)
    assert "Sweep finished: 3 jobs, 1 failed" in out
    best_name = min(runs, key=runs.get)
    best = yaml.safe_load((sweep / "best_job.yaml").read_text())
    assert Path(best["dir"]).name == best_name and best["value"] == pytest.approx(runs[best_name], rel=1e-6)
    assert best["config"]["schedule"]["gamma"] == float(best_name.split("=")[1])  # its whole config
    assert f"Best (minimize val/loss): #{0 if best_name.endswith('0.5') else 2} {best_name}" in out
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
    assert "Sweep finished: 2 jobs, 0 failed" in proc.stdout


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
    assert len(job_dirs(sweep)) == 21 and "Sweep finished: 21 jobs, 0 failed" in proc.stdout
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
