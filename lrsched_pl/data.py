"""The default data: scikit-learn's bundled handwritten digits (8x8 images, 10 classes, no download).

The training loader is *stateful* in Lightning's sense (``state_dict`` / ``load_state_dict``, saved by the fit loop in
every checkpoint): epoch ``e`` is shuffled by a generator seeded with ``seed + e``, as torch's ``DistributedSampler``
does, and a resumed epoch starts at the batch the checkpoint had reached. Neither loader draws from torch's global
random state, so where checkpoints, validations and resumes fall does not change the dropout of training.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from lrsched_pl import digits


class EpochSampler(RandomSampler):
    """A random order per epoch, a function of ``(seed, epoch)``: ``randperm(n)`` from a generator seeded with
    ``seed + epoch``. Lightning calls :meth:`set_epoch` before every epoch (under DDP it swaps in its
    ``DistributedSampler``, which does the same per rank).

    Args:
        data_source: The dataset.
        seed: The base seed of the orders.
    """

    def __init__(self, data_source: Any, seed: int) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self.seed = seed
        self.epoch = 0
        self.start = 0  # samples to skip at the start of the next epoch drawn (a resumed epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(self.seed + self.epoch)
        start, self.start = self.start, 0
        return iter(torch.randperm(len(self.data_source), generator=self.generator)[start:].tolist())


class ResumableLoader(DataLoader):
    """A DataLoader that records its position: ``{"seed", "epoch", "batches"}`` (batches handed out this epoch).

    After :meth:`load_state_dict`, the next iteration over the same epoch starts at the batch the state had reached
    (the sampler skips what was consumed; another sampler, e.g. Lightning's ``DistributedSampler``, is fast-forwarded
    batch by batch); a new epoch starts from its beginning. Iteration starts lazily, at the first batch, which
    Lightning requests after :meth:`EpochSampler.set_epoch`. Worker processes are seeded from the loader's own
    generator, seeded per epoch too.
    """

    _batches = 0
    _resume: tuple[int | None, int] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"seed": getattr(self.sampler, "seed", None), "epoch": self._epoch(), "batches": self._batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("seed") is not None and isinstance(self.sampler, EpochSampler):
            self.sampler.seed = int(state["seed"])  # the order of the run that wrote the checkpoint
        self._resume = (state.get("epoch"), int(state.get("batches", 0)))

    def rewind(self, batches: int) -> None:
        """Counts the last ``batches`` handed out as not consumed (a batch in flight when training stopped)."""
        self._batches = max(0, self._batches - batches)

    def _epoch(self) -> int | None:
        epoch = getattr(self.sampler, "epoch", None)
        return None if epoch is None else int(epoch)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        resume, self._resume = self._resume, None
        skip = resume[1] if resume is not None and resume[0] == self._epoch() else 0
        epoch = self._epoch() or 0
        if self.generator is None:  # else each iterator's worker seed would come from torch's global state
            self.generator = torch.Generator()
        self.generator.manual_seed(getattr(self.sampler, "seed", 0) + epoch)
        fast_forward = skip
        if isinstance(self.sampler, EpochSampler):
            self.sampler.start, fast_forward = skip * (self.batch_size or 1), 0
        self._batches = skip
        iterator = super().__iter__()
        for _ in zip(range(fast_forward), iterator):  # batches already trained on (stops early if fewer)
            pass
        for batch in iterator:
            self._batches += 1
            yield batch


class DigitsDataModule(pl.LightningDataModule):
    """``sklearn.datasets.load_digits`` (1797 images of 64 pixels), pixels scaled to [0, 1].

    Args:
        batch_size: Samples per batch.
        val_fraction: Share of the samples held out for validation, in (0, 1).
        split_seed: Seed of the train/validation split (fixed, independent of the training seed).
        num_workers: DataLoader workers; 0 keeps this small set in the main process, which is fastest here.
        label_noise: Share of the training labels replaced by uniformly random classes (fixed by ``split_seed``),
            in [0, 1); the validation labels stay clean. A harder task on which the LR schedule matters more.
    """

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        num_workers: int = 0,
        label_noise: float = 0.0,
    ):
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"`data.val_fraction` must be in (0, 1), got {val_fraction!r}")
        if not 0.0 <= label_noise < 1.0:
            raise ValueError(f"`data.label_noise` must be in [0, 1), got {label_noise!r}")
        self.label_noise = label_noise
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        x, y = digits.load()
        x = torch.as_tensor(x, dtype=torch.float32) / 16.0
        y = torch.as_tensor(y, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = digits.val_size(len(x), self.val_fraction)
        val, train = order[:n_val], order[n_val:]
        self.train_set = TensorDataset(x[train], self._noisy(y[train]))
        self.val_set = TensorDataset(x[val], y[val])

    def _noisy(self, labels: torch.Tensor) -> torch.Tensor:
        """``labels`` with a ``label_noise`` share of them, picked by ``split_seed``, set to random classes."""
        if self.label_noise == 0.0:
            return labels
        generator = torch.Generator().manual_seed(self.split_seed + 1)
        flip = torch.rand(len(labels), generator=generator) < self.label_noise
        random = torch.randint(0, int(labels.max()) + 1, (len(labels),), generator=generator)
        return torch.where(flip, random, labels)

    def train_dataloader(self) -> ResumableLoader:
        # the orders follow the run's seed (`seed_everything` sets torch's initial seed) without drawing from the
        # global random state; a resume keeps the checkpoint's seed (ResumableLoader.load_state_dict)
        sampler = EpochSampler(self.train_set, seed=torch.initial_seed() % 2**62)
        return ResumableLoader(
            self.train_set, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
            generator=torch.Generator(),
        )  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, batch_size=256, num_workers=self.num_workers, generator=torch.Generator().manual_seed(0)
        )
