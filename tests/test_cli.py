"""The command line as a user meets it: every bad value refused in one line before Lightning loads, the help page,
and runs free of Lightning's advertising and SLURM hints.

The table of bad values runs ``python train.py`` once per row, each in a process of its own forked after the shared
imports (``tests/cli_batch.py``), in a module fixture; each row is then its own test: exit status 1, one ``Error:``
line naming the key (plus at most one ``hint:`` line), no traceback, and no run directory left behind.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

# (overrides, the key the one-line error must name)
BAD: list[tuple[list[str], str]] = [
    # trainer: Lightning's own types and ranges
    (["trainer.max_epochs=abc"], "trainer.max_epochs"),
    (["trainer.max_epochs=-2"], "trainer.max_epochs"),
    (["trainer.min_epochs=5", "trainer.max_epochs=2"], "trainer.min_epochs"),
    (["trainer.max_steps=1.5"], "trainer.max_steps"),
    (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches"),
    (["trainer.precision=8"], "trainer.precision"),
    (["trainer.precision=fp16"], "trainer.precision"),
    (["trainer.devices=0"], "trainer.devices"),
    (["trainer.num_nodes=0"], "trainer.num_nodes"),
    (["trainer.accelerator=quantum"], "trainer.accelerator"),
    (["trainer.limit_train_batches=1.5"], "trainer.limit_train_batches"),
    (["trainer.limit_val_batches=-1"], "trainer.limit_val_batches"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval"),
    (["trainer.check_val_every_n_epoch=0"], "trainer.check_val_every_n_epoch"),
    (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val"),
    (["trainer.gradient_clip_algorithm=l2"], "trainer.gradient_clip_algorithm"),
    (["trainer.deterministic=maybe"], "trainer.deterministic"),
    (["trainer.log_every_n_steps=-1"], "trainer.log_every_n_steps"),
    (["trainer.max_time=1h"], "trainer.max_time"),
    (["trainer.fast_dev_run=-1"], "trainer.fast_dev_run"),
    (["trainer.overfit_batches=2.5"], "trainer.overfit_batches"),
    (["trainer.num_sanity_val_steps=-2"], "trainer.num_sanity_val_steps"),
    (["trainer.inference_mode=sometimes"], "trainer.inference_mode"),
    (["+trainer.foo=1"], "trainer.foo"),
    # top-level keys
    (["seed=abc"], "seed"),
    (["seed=-1"], "seed"),
    (["seed=1.5"], "seed"),
    (["objective_direction=up"], "objective_direction"),
    (["objective=null"], "objective"),
    (["lr_find=maybe"], "lr_find"),
    (["ckpt_path=/nonexistent/last.ckpt"], "ckpt_path"),
    (["ckpt_path=conf"], "ckpt_path"),  # a folder
    # the default model and data module
    (["model.hidden=[0]"], "model.hidden"),
    (["model.dropout=1.0"], "model.dropout"),
    (["model.num_classes=1"], "model.num_classes"),
    (["+model.widht=3"], "model.widht"),
    (["data.batch_size=0"], "data.batch_size"),
    (["data.batch_size=abc"], "data.batch_size"),
    (["data.val_fraction=1.0"], "data.val_fraction"),
    (["data.label_noise=1"], "data.label_noise"),
    (["data.num_workers=-1"], "data.num_workers"),
    (["+data.shuffle=true"], "data.shuffle"),
    # callbacks and logger
    (["callbacks.learning_rate_monitor.logging_interval=batch"], "callbacks.learning_rate_monitor.logging_interval"),
    (["callbacks.learning_rate_monitor.log_momentum=yes"], "callbacks.learning_rate_monitor.log_momentum"),
    (["callbacks.model_checkpoint.mode=best"], "callbacks.model_checkpoint.mode"),
    (["callbacks.model_checkpoint.save_top_k=-2"], "callbacks.model_checkpoint.save_top_k"),
    (["callbacks.model_checkpoint.save_top_k=3"], "callbacks.model_checkpoint.save_top_k"),  # no monitor to rank by
    (["callbacks.model_checkpoint.every_n_epochs=1", "callbacks.model_checkpoint.every_n_train_steps=5"],
     "callbacks.model_checkpoint.every_n_epochs"),  # fmt: skip
    (["callbacks.model_checkpoint.save_last=sometimes"], "callbacks.model_checkpoint.save_last"),
    (["+callbacks.model_checkpoint.monitr=val/loss"], "callbacks.model_checkpoint.monitr"),
    (["logger.log_graph=maybe"], "logger.log_graph"),
    # the optimizer: torch's own ranges
    (["optimizer.momentum=-0.1"], "optimizer.momentum"),
    (["optimizer.weight_decay=-1"], "optimizer.weight_decay"),
    (["optimizer.nesterov=maybe"], "optimizer.nesterov"),
    (["optimizer=adam", "optimizer.betas=[0.9,1.0]"], "optimizer.betas"),
    (["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas"),
    (["optimizer=adam", "optimizer.eps=-1"], "optimizer.eps"),
    (["optimizer=rmsprop", "optimizer.alpha=-0.5"], "optimizer.alpha"),
    (["optimizer=adagrad", "optimizer.lr_decay=-1"], "optimizer.lr_decay"),
    (["+optimizer.momentun=0.9"], "optimizer.momentun"),
    # combinations a config decides, and configs that were silently wrong
    (["schedule=cyclic", "optimizer=adagrad"], "schedule.cycle_momentum"),
    (["schedule=onecycle", "optimizer=adagrad"], "schedule.cycle_momentum"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps"),  # the LR monitor would log nothing
    (["schedule=cosine", "~callbacks.lr_schedule"], "callbacks.lr_schedule"),
    (["schedule=sequence", "schedule.schedules=[{name: constant},{name: plateau}]"], "schedule.schedules[1].name"),
    (["schedule=cyclic", "schedule.max_lr=0"], "schedule.max_lr"),
    (["schedule=cosine", "schedule.interval=1"], "schedule.interval"),
    # refused by Hydra while composing, in the same one-line form
    (["schedule=stepp"], "schedule=stepp"),
    (["schedule=step", "schedule.gama=0.3"], "schedule.gama"),
    (["+trainer.max_epochs=3"], "trainer.max_epochs"),
]


def _train(args: list[str], run_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("refusals")
    runs = [root / f"run{i}" for i in range(len(BAD))]
    rows = [[*overrides, f"hydra.run.dir={run}"] for (overrides, _), run in zip(BAD, runs)]
    batch = subprocess.run([sys.executable, "tests/cli_batch.py"], input=json.dumps(rows), cwd=ROOT,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert batch.returncode == 0, batch.stderr[-3000:]
    results = json.loads(batch.stdout)
    procs = [subprocess.CompletedProcess(["train.py", *row], **result) for row, result in zip(rows, results)]
    return list(zip(procs, runs))


@pytest.mark.parametrize("index", range(len(BAD)), ids=[" ".join(o) for o, _ in BAD])
def test_a_bad_value_is_refused_in_one_line_naming_its_key(refusals, index: int) -> None:
    proc, run_dir = refusals[index]
    key = BAD[index][1]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert 1 <= len(lines) <= 2 and lines[0].startswith("Error: "), proc.stderr
    assert len(lines) == 1 or lines[1].startswith("hint: "), proc.stderr
    assert f"`{key}`" in lines[0] or key in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and "lightning" not in proc.stdout.lower()
    assert not run_dir.exists()


def test_the_table_covers_every_group() -> None:
    groups = {key.split(".")[0].split("=")[0] for _, key in BAD}
    assert {"trainer", "seed", "model", "data", "callbacks", "optimizer", "ckpt_path", "schedule", "logger"} <= groups
    assert len(BAD) >= 50


def test_a_full_traceback_on_request(tmp_path: Path) -> None:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    proc = _train(["schedule=step", "schedule.gamma=1.5"], tmp_path / "run", env=env)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "`schedule.gamma`" in proc.stderr


def test_help_is_the_projects_page_with_every_option_and_its_formula() -> None:
    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    text = proc.stdout
    for group in ("schedule", "plateau", "optimizer", "model", "data", "experiment", "hparams_search", "hydra/launcher"):
        assert f"{group}=<option>" in text
    for option in sorted(p.stem for p in (ROOT / "conf" / "schedule").glob("*.yaml")):
        assert f"\n  {option} " in text, option
    assert "lr = lr0 * gamma ** floor(t / step_size)" in " ".join(text.split())  # step's formula, wrapped
    assert "schema" not in text and "Powered by Hydra" not in text
    for key in ("seed", "ckpt_path", "objective", "optimizer.lr", "trainer.max_epochs"):
        assert f"\n  {key} " in text


def test_runs_carry_no_litlogger_tip_and_no_srun_hint_but_real_warnings(tmp_path: Path) -> None:
    """A host with SLURM's `srun` on PATH: Lightning's hint about it and its cloud-logger tip are dropped."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = _train(["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false",
                   "trainer.log_every_n_steps=50"], tmp_path / "run", env=env)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "pypi.org/project/litlogger" not in out and "The `srun` command" not in out
    assert "smaller than the logging interval" in out  # Lightning's real warnings stay


def test_a_model_of_the_users_own_is_checked_against_its_init_without_importing_it(tmp_path: Path) -> None:
    """Unknown and missing keys of a `_target_` of the user's own, read from its source: refused before Lightning
    loads (the module raises if imported, so a refusal proves it was not)."""
    pkg = tmp_path / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(
        "raise ImportError('imported during validation')\n"
        "class MyModel:\n"
        "    def __init__(self, optimizer, width: int, depth: int = 2):\n"
        "        pass\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    target = "model._target_=my_pkg.model.MyModel"
    cases = [
        ([target, "~model.num_features", "~model.num_classes", "~model.hidden", "~model.dropout"], "model.width"),
        ([target, "~model.num_features", "~model.num_classes", "~model.hidden", "~model.dropout", "+model.width=4",
          "+model.dept=3"], "model.dept"),  # fmt: skip
        ([target, "model.num_features=64"], "model.num_features"),
        (["~model.num_features", "~model.num_classes", "~model.hidden", "~model.dropout", target, "+model.width=abc"],
         "model.width"),  # fmt: skip
    ]
    for i, (overrides, key) in enumerate(cases):
        proc = _train(overrides, tmp_path / f"run{i}", env=env)
        assert proc.returncode == 1 and f"`{key}`" in proc.stderr, (overrides, proc.stderr)
        assert "imported during validation" not in proc.stderr and not (tmp_path / f"run{i}").exists()
