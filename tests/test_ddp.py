"""DDP with real processes (gloo on CPU): every rank uses the same LR at every step although each rank logs its own
value of the monitored metric; a Hydra multirun with Lightning's ``ddp`` launcher is refused, ``ddp_spawn`` works."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, f32_equal, read_scalars
from rank_models import RANK_METRICS

from lrsched_pl import ReducePlateau

EPOCHS, STEPS_PER_EPOCH = 4, 2
DEVICES = ["trainer.accelerator=cpu", "trainer.devices=2"]
SHORT = [
    f"trainer.limit_train_batches={STEPS_PER_EPOCH}", "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false"
]


def run_train(*args: str, flags: tuple[str, ...] = (), timeout: int = 300) -> subprocess.CompletedProcess:
    """``python *flags train.py *args`` from the repository, with the tests directory importable (rank_models)."""
    paths = [str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    return subprocess.run(
        [sys.executable, *flags, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def plateau_lrs(metrics: list[float], lr0: float = 0.1) -> list[float]:
    """The LR of each optimizer step under a patience-0 plateau fed ``metrics`` after each epoch."""
    plateau, lrs = ReducePlateau("val/rank_metric", patience=0), []
    for metric in metrics:
        lrs += [plateau.apply(lr0)] * STEPS_PER_EPOCH
        plateau.step(metric, [lr0])
    return lrs


@pytest.mark.slow
def test_ddp_ranks_take_the_same_plateau_decision_on_a_metric_logged_without_sync_dist(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_train(
        "schedule=plateau", "schedule.monitor=val/rank_metric", "schedule.patience=0",
        "model._target_=rank_models.RankMetricClassifier", "trainer.strategy=ddp", *DEVICES, *SHORT,
        f"trainer.max_epochs={EPOCHS}", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((run_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    f32 = {r: [float(torch.tensor(m)) for m in RANK_METRICS[r]] for r in (0, 1)}  # self.log stores float32
    assert [r["seen"] for r in ranks] == [f32[0], f32[1]]  # each rank's callback really saw its own value
    lrs = [[lr for step, (lr,) in sorted(r["lrs"].items(), key=lambda kv: int(kv[0]))] for r in ranks]
    assert lrs[0] == lrs[1] and len(lrs[0]) == EPOCHS * STEPS_PER_EPOCH  # the same LR at every step
    assert ranks[0]["state"] == ranks[1]["state"]
    mean = [(a + b) / 2 for a, b in zip(f32[0], f32[1])]
    assert lrs[0] == plateau_lrs(mean) == [0.1] * 6 + [0.05] * 2  # the mean's decision: reduce after epoch 2
    # without the all-reduce each rank would decide on its own value, and the ranks would differ
    alone = [plateau_lrs(f32[0]), plateau_lrs(f32[1])]
    assert alone[0] == [0.1] * 4 + [0.05] * 2 + [0.025] * 2 and alone[1] == [0.1] * 8
    assert alone[0] != alone[1] and lrs[0] not in alone


def test_multirun_with_the_ddp_launcher_is_refused_before_lightning_is_imported(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m", "schedule=step,cosine", "trainer.devices=2", "trainer.strategy=ddp", f"hydra.sweep.dir={sweep}",
        flags=("-X", "importtime"),
    )
    assert proc.returncode != 0
    refusal = "`trainer.strategy` must be ddp_spawn (or ddp_fork) under a Hydra multirun (-m) on 2 processes"
    assert refusal in proc.stderr
    assert "set `trainer.strategy=ddp_spawn`" in proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "omegaconf" in imported and not any(name.split(".")[0] in ("lightning", "torch") for name in imported)
    assert "no job launched" in proc.stderr
    assert not sweep.exists()  # refused when the sweep starts, before the sweeper writes anything


@pytest.mark.parametrize(
    "overrides,refused",
    [
        (["trainer.strategy=ddp", "trainer.devices=2"], True),
        (["trainer.strategy=auto", "trainer.devices=2"], True),  # Lightning picks the ddp launcher
        (["trainer.strategy=fsdp", "trainer.devices=[0,1]"], True),
        (["trainer.strategy=ddp", "trainer.devices=1", "trainer.num_nodes=2"], True),
        (["trainer.strategy=ddp", "trainer.devices=1"], False),
        (["trainer.strategy=ddp_spawn", "trainer.devices=2"], False),
        (["trainer.strategy=ddp_fork", "trainer.devices=2"], False),
        (["trainer.strategy=ddp", "trainer.devices=auto"], False),  # accelerator=cpu: one device
    ],
)
def test_which_multirun_launches_are_refused(compose, overrides: list[str], refused: bool) -> None:
    from lrsched_pl.errors import ConfigValueError
    from lrsched_pl.launch import check_launch

    cfg = compose(*overrides)
    check_launch(cfg, multirun=False)  # a single run is never refused: Lightning's launcher handles it
    if refused:
        with pytest.raises(ConfigValueError, match=r"`trainer.strategy` must be ddp_spawn"):
            check_launch(cfg, multirun=True)
    else:
        check_launch(cfg, multirun=True)


@pytest.mark.slow
def test_multirun_with_ddp_spawn_runs_each_job_once_on_two_processes(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m", "schedule=exponential,cosine", "schedule.interval=step", "trainer.strategy=ddp_spawn",
        *DEVICES, *SHORT, "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}",
        timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir() if (p / ".hydra").is_dir())  # not report/ or results/
    assert jobs == ["0", "1"] and (sweep / "multirun.yaml").is_file()  # no duplicated sweep, no extra job
    steps = 2 * STEPS_PER_EPOCH
    curves = {job: [v for _, v in read_scalars(sweep / job, "lr-SGD")] for job in ("0", "1")}
    assert [s for s, _ in read_scalars(sweep / "0", "lr-SGD")] == list(range(steps))
    assert all(f32_equal(v, 0.1 * 0.9**k) for k, v in enumerate(curves["0"]))  # exponential, the job's own schedule
    assert all(f32_equal(v, 0.1 * (1 + math.cos(math.pi * k / steps)) / 2) for k, v in enumerate(curves["1"]))
    for job in ("0", "1"):
        assert len(read_scalars(sweep / job, "val/loss")) == 2 and (sweep / job / "checkpoints" / "last.ckpt").exists()
    assert proc.stderr.count("Launching 2 jobs locally") + proc.stdout.count("Launching 2 jobs locally") == 1


def test_a_rank_destroys_its_gloo_process_group_at_exit_before_python_shuts_down(tmp_path: Path) -> None:
    """The rank's group is gone when its exit handlers run (registered later, run earlier than this check)."""
    script = tmp_path / "rank.py"
    script.write_text(
        "import atexit, torch.distributed as dist\n"
        "from lrsched_pl.process_group import DestroyProcessGroupAtExit\n"
        f"dist.init_process_group('gloo', init_method='file://{tmp_path / 'store'}', rank=0, world_size=1)\n"
        "atexit.register(lambda: print('at exit, initialized:', dist.is_initialized(), flush=True))\n"
        "DestroyProcessGroupAtExit().setup(None, None, 'fit')\n"
        "DestroyProcessGroupAtExit().setup(None, None, 'fit')  # a second Trainer in the same rank: once\n"
        "print('while running, initialized:', dist.is_initialized(), flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["while running, initialized: True", "at exit, initialized: False"]
