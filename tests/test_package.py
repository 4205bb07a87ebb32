"""The installable tool, as a new user meets it: a built wheel in a fresh venv, used from a folder outside the repo.

One session-wide venv (``pip install torch==2.13.0 <wheel>[cli]``, the README's install line) serves every
test here: every entry point, a Hydra app of the user's own (``tests/package_fixtures``: its own model, data, trainer
and callbacks configs, lightning-hydra-template layout) and LightningCLI. The LR each optimizer step used is
recorded by the user's own callback and compared with the schedule's published formula.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, read_scalars

pytestmark = pytest.mark.slow

FIXTURES = ROOT / "tests" / "package_fixtures"
SWEEP_PLUGINS = ("hydra-joblib-launcher", "hydra-submitit-launcher", "hydra-optuna-sweeper", "optuna")


def _run(cmd: list[str], cwd: Path, timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], cwd=out)
    (path,) = out.glob("lrsched_pl-*.whl")
    return path


@pytest.fixture(scope="session")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding torch==2.13.0 and the wheel with the `cli` extra: its ``bin`` folder."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(root)], cwd=root)
    python = str(root / "bin" / "python")
    # the README's install line, one pip call; pip byte-compiles what it installs one file at a time, compileall
    # does the same on every core (a few files of torch's dependencies do not compile, as under pip: rc ignored)
    install = [python, "-m", "pip", "install", "-q", "--no-compile", "torch==2.13.0", f"{wheel}[cli]"]
    _run(install, cwd=root, timeout=900)
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root).stdout.strip()
    _run([python, "-m", "compileall", "-q", "-j", "0", site], cwd=root, timeout=900, check=False)
    return root / "bin"


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """An empty folder outside the repository, holding the user's own project files."""
    shutil.copytree(FIXTURES, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_the_wheel_carries_the_configs_the_plugin_and_the_entry_points(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    configs = sorted(n for n in names if n.startswith("lrsched_pl/conf/"))
    repo_configs = sorted(f"lrsched_pl/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml"))
    assert configs == repo_configs
    assert "hydra_plugins/lrsched_pl_searchpath/searchpath.py" in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace package shared with Hydra's other plugins
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for script in ("lrsched-train", "lrsched-preview", "lrsched-report", "lrsched-lr-find", "lrsched-branch"):
        assert f"{script} = " in entry_points


def test_the_core_install_pulls_no_sweep_plugin(wheel: Path, venv: Path) -> None:
    metadata = zipfile.ZipFile(wheel).read("lrsched_pl-0.1.0.dist-info/METADATA").decode()
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert core and not any(plugin in line for line in core for plugin in SWEEP_PLUGINS), core
    installed = _run([str(venv / "python"), "-m", "pip", "list", "--format=freeze"], cwd=venv).stdout.lower()
    assert "lrsched_pl" in installed.replace("-", "_") and "jsonargparse" in installed
    assert not any(plugin in installed for plugin in SWEEP_PLUGINS), installed


def test_every_entry_point_works_from_an_empty_folder(venv: Path, tmp_path: Path) -> None:
    """lrsched-train (one run, a two-job sweep), python -m lrsched_pl, lrsched-report and lrsched-preview."""
    _run([str(venv / "lrsched-train"), "schedule=step", "schedule.step_size=1", "trainer.max_epochs=2",
          "trainer.enable_progress_bar=false", "hydra.run.dir=outputs/runs/one"], cwd=tmp_path)  # fmt: skip
    lrs = [value for _, value in read_scalars(tmp_path / "outputs/runs/one", "lr-SGD")]
    per_epoch = len(lrs) // 2
    assert lrs == pytest.approx([0.1] * per_epoch + [0.05] * per_epoch)  # StepLR: lr0 * 0.5 ** epoch
    sweep = tmp_path / "outputs" / "sweep"
    proc = _run([str(venv / "python"), "-m", "lrsched_pl", "-m", "schedule=constant,cosine", "trainer.max_epochs=1",
                 f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}"], cwd=tmp_path)  # fmt: skip
    assert "Sweep finished: 2 jobs: 2 finished, 0 failed" in proc.stdout + proc.stderr
    assert sorted(p.name for p in sweep.iterdir() if (p / ".hydra").is_dir()) == ["0", "1"]
    _run([str(venv / "lrsched-report"), str(sweep), "--out", str(tmp_path / "report")], cwd=tmp_path)
    assert (tmp_path / "report" / "report.md").is_file()
    proc = _run([str(venv / "lrsched-preview"), "schedule=cosine", "schedule.warmup=0.1dur"], cwd=tmp_path)
    assert (tmp_path / "outputs/preview/schedule=cosine_schedule.warmup=0.1dur.png").is_file(), proc.stdout
    cfg = _run([str(venv / "lrsched-train"), "schedule=wsd", "--cfg", "job"], cwd=tmp_path).stdout
    assert "name: wsd" in cfg


def _logged_lrs(path: Path) -> list[float]:
    """The user's LRLog: the LR of each optimizer step, one entry per step 0, 1, 2, ..."""
    rows = json.loads(path.read_text())
    assert [step for step, _ in rows] == list(range(len(rows)))
    return [lr for _, lr in rows]


def test_a_hydra_app_of_the_users_own_gets_the_schedule_groups(venv: Path, user_dir: Path) -> None:
    """`- schedule: cosine`, `- plateau: null` and `- lr_schedule` in the app's own defaults; three schedules run
    with the LR of every step equal to the formula; a bad value is refused naming its key; a momentum schedule
    writes the momentum of every step."""
    python = str(venv / "python")
    _run([python, "my_train.py", "-m", "schedule=cosine,time_based", "hydra.sweep.dir=cos_tb",
          "hydra.sweep.subdir=${hydra.job.num}"], cwd=user_dir)  # fmt: skip
    steps = 12  # 3 epochs of 4 batches
    cosine = _logged_lrs(user_dir / "cos_tb/0/lrs.json")
    assert cosine == pytest.approx([0.1 * (1 + math.cos(math.pi * k / steps)) / 2 for k in range(steps)], rel=1e-12)
    time_based = _logged_lrs(user_dir / "cos_tb/1/lrs.json")  # Keras: lr0 / (1 + decay * iterations)
    assert time_based == pytest.approx([0.1 / (1 + 0.01 * k) for k in range(steps)], rel=1e-12)
    proc = _run([python, "my_train.py", "schedule=step", "schedule.gamma=0.5", "schedule.step_size=1",
                 "plateau=val_loss", "hydra.run.dir=step"], cwd=user_dir)  # fmt: skip
    assert "ScheduleCallback" in proc.stdout  # instantiate(cfg.callbacks.lr_schedule)
    step = _logged_lrs(user_dir / "step/lrs.json")
    assert step == pytest.approx([0.1 * 0.5 ** (k // 4) for k in range(steps)])  # per epoch; no plateau yet
    bad = _run([python, "my_train.py", "schedule=step", "schedule.gamma=1.5"], cwd=user_dir, check=False)
    assert bad.returncode != 0 and "`schedule.gamma` must be in (0, 1], got 1.5" in bad.stderr
    # the other scheduled values too: the momentum of the user's own SGD (0.9) halved every epoch
    _run([python, "my_train.py", "momentum_schedule=step", "momentum_schedule.gamma=0.5", "momentum_schedule.step_size=1",
          "callbacks.lr_log.key=momentum", "hydra.run.dir=momentum"], cwd=user_dir)  # fmt: skip
    assert _logged_lrs(user_dir / "momentum/lrs.json") == pytest.approx([0.9 * 0.5 ** (k // 4) for k in range(steps)])


def test_lightning_cli_takes_the_callback_and_fractions_of_the_run(venv: Path, user_dir: Path) -> None:
    """A LightningCLI YAML (warmup of 0.25dur, then cosine, per step) and the command-line form (StepDecay with
    step_size=0.5dur), each checked step by step against the formula."""
    python = str(venv / "python")
    (user_dir / "yaml").mkdir()
    _run([python, "../my_cli.py", "fit", "--config", "../cli_config.yaml"], cwd=user_dir / "yaml")
    lrs = _logged_lrs(user_dir / "yaml" / "cli_yaml_lrs.json")
    warmup, steps = 3, 12  # ceil(0.25 * 12) steps of linear warmup, then cosine over the other 9 (HuggingFace)
    expected = [0.1 * k / warmup for k in range(warmup)]
    expected += [0.1 * (1 + math.cos(math.pi * k / (steps - warmup))) / 2 for k in range(steps - warmup)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    (user_dir / "cmd").mkdir()
    _run([python, "../my_cli.py", "fit", "--trainer.max_epochs=2", "--trainer.logger=false",
          "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false",
          "--trainer.callbacks+=lrsched_pl.ScheduleCallback", "--trainer.callbacks.schedule=StepDecay",
          "--trainer.callbacks.schedule.step_size=0.5dur", "--trainer.callbacks.schedule.gamma=0.1",
          "--trainer.callbacks.interval=step", "--trainer.callbacks+=my_pkg.parts.LRLog",
          "--trainer.callbacks.path=lrs.json"], cwd=user_dir / "cmd")  # fmt: skip
    assert _logged_lrs(user_dir / "cmd" / "lrs.json") == pytest.approx([0.1] * 4 + [0.01] * 4)
