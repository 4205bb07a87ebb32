"""Every global random state in the checkpoint, so that a resumed run draws the same random numbers (dropout, ...).

Lightning's checkpoints restore weights, optimizer and loop progress but no random state; the data order is the
data loader's own state (:class:`lrsched_pl.data.ResumableLoader`).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback
from typing_extensions import override


class RandomState(Callback):
    """Saves the random states of torch (CPU and every CUDA device), numpy and Python's ``random`` in each
    checkpoint, and restores them when training resumes.

    They are saved when the checkpoint is written and restored in ``on_train_start`` (after the sanity check, right
    before the first batch), so the resumed run continues the random stream where the checkpoint left it. A
    checkpoint written while a batch is in flight (``ModelCheckpoint(save_on_exception=True)`` on an error during a
    batch), which Lightning resumes by fetching that batch again, is written as of that batch's start: the states
    after the previous batch, the loop's progress without the batch, and the data loader rewound by it (a loader
    with ``rewind(n)``), so the batch is repeated exactly and logged at its own step. The states are stored as
    tensors and plain Python values: checkpoints still load with ``weights_only=True``. On GPU the CUDA generators
    are restored too (with the same number of devices); kernels that are nondeterministic by design stay so
    (``trainer.deterministic=true`` asks torch for deterministic ones).
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._boundary: dict[str, Any] | None = None  # the states after the last batch
        self._in_flight = False

    @override
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._boundary = _collect_rng_states(include_cuda=True)

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        if not trainer.training or progress.ready <= progress.processed or self._boundary is None:
            return
        self._in_flight = True  # fetched, not processed: Lightning will fetch this batch again on resume
        loaders = trainer.train_dataloader
        for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
            if hasattr(loader, "rewind"):
                loader.rewind(1)

    @override
    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if not self._in_flight:
            return
        # as if written before the batch in flight was fetched, which is how it resumes; otherwise Lightning counts
        # that batch as stepped (`_batches_that_stepped`) and logs every later step one step late
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        for tracker in (progress["total"], progress["current"]):
            tracker["ready"] = tracker["started"] = tracker["processed"] = tracker["completed"]

    @override
    def state_dict(self) -> dict[str, Any]:
        states = dict(self._boundary if self._in_flight else _collect_rng_states(include_cuda=True))
        name, keys, pos, has_gauss, gauss = states.pop("numpy", np.random.get_state())
        states["numpy"] = [str(name), torch.as_tensor(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]
        version, python_state, python_gauss = states["python"]
        states["python"] = [version, list(python_state), python_gauss]
        return states

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state, self._pending = self._pending, None
        self._boundary = _collect_rng_states(include_cuda=True)
        if state is None:
            return
        name, keys, pos, has_gauss, gauss = state["numpy"]
        state["numpy"] = (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss)
        if not torch.cuda.is_available() or len(state.get("torch.cuda", [])) != torch.cuda.device_count():
            state.pop("torch.cuda", None)  # written on other devices: the CPU stream is still restored
        _set_rng_states(state)
        self._boundary = _collect_rng_states(include_cuda=True)
