"""Each rank destroys its process group when it exits, while Python is still whole.

Lightning registers ``torch.distributed.destroy_process_group`` at exit for NCCL only. A gloo rank (DDP on CPU,
``ddp_spawn``) that exits without it leaves the group to interpreter finalization, where a gloo worker thread
that still holds a finished collective's tensor needs the GIL to free it and aborts the process (SIGABRT, no Python
error; pytorch/pytorch#179291). A rank whose worker thread was slow to let go (a loaded machine) died that way.
"""

from __future__ import annotations

import atexit
import lightning.pytorch as pl
import torch.distributed as dist
from lightning.fabric.utilities.distributed import _destroy_dist_connection
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

_registered = False  # once per process: every Trainer of a rank shares its default group


class DestroyProcessGroupAtExit(Callback):
    """Registers Lightning's own ``_destroy_dist_connection`` with :mod:`atexit` in each rank that holds a process
    group (``setup`` runs in every rank, after the group is initialized); nothing without one."""

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        global _registered
        if _registered or not (dist.is_available() and dist.is_initialized()):
            return
        _registered = True
        atexit.register(_destroy_dist_connection)
