"""A callback that breaks a job on purpose, for the sweep tests: ``python train.py +callbacks.fault._target_=
faults.Fault +callbacks.fault.action=raise`` with the tests directory on ``PYTHONPATH`` (not collected by pytest)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig


class Fault(pl.Callback):
    """At optimizer step ``at_step``: ``raise`` a RuntimeError, ``kill`` its own process (SIGKILL, as the OS's
    out-of-memory killer does) once another job of the sweep has failed (so both failures happen, in that order), or
    do nothing (``none``)."""

    def __init__(self, action: str = "none", at_step: int = 0) -> None:
        self.action, self.at_step = action, at_step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step != self.at_step:
            return
        if self.action == "raise":
            raise RuntimeError(f"injected failure at step {self.at_step}")
        if self.action == "kill":
            results = Path(HydraConfig.get().sweep.dir) / "results"
            for _ in range(600):
                if any("status: failed" in p.read_text() for p in results.glob("*.yaml")):
                    break
                time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGKILL)
