"""The default data: scikit-learn's bundled handwritten digits (8x8 images, 10 classes, no download)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lrsched_pl import digits


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

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256, num_workers=self.num_workers)
