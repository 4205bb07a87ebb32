"""A run stopped by SIGTERM or SIGINT exits 143 / 130 after its last checkpoint is written, and ``train.log`` says how
it ended; stopped before its first step, it leaves no run directory."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from lrsched_pl.checkpoint import check_file

LONG = ["trainer.max_epochs=1000", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "callbacks.model_checkpoint.every_n_train_steps=3",
        "callbacks.model_checkpoint.save_on_exception=true"]  # fmt: skip


def start(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "train.py", *args, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(path: Path, proc: subprocess.Popen, limit: float = 240.0) -> None:
    """Waits until ``path`` exists (the run got there), failing if the process ends first."""
    deadline = time.monotonic() + limit
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_training_exits_non_zero_after_the_last_checkpoint(tmp_path: Path, signum: int, code: int) -> None:
    run_dir = tmp_path / "run"
    proc = start(run_dir, *LONG)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == code, stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    name = signal.Signals(signum).name
    (line,) = re.findall(rf"Run stopped by {name} after step (\d+); last checkpoint: (\S+) \(exit code {code}\)", log)
    step, ckpt = int(line[0]), Path(line[1])
    assert ckpt == run_dir / "checkpoints" / "last.ckpt"
    check_file(ckpt)  # written whole, after the batch in progress ended: it holds exactly that step
    assert torch.load(ckpt, weights_only=True)["global_step"] == step > 0


def test_a_signal_before_the_first_step_leaves_no_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start(run_dir, *LONG)
    wait_for(run_dir / ".hydra" / "overrides.yaml", proc)  # Hydra has made the run dir; the job is starting
    time.sleep(0.3)  # the job installs its handlers within milliseconds, long before Lightning is even imported
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 143, stderr[-3000:]
    assert not run_dir.exists()
