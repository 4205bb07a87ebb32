"""A user's LightningModule, LightningDataModule and a callback that records the LR each optimizer step used."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class Regressor(pl.LightningModule):
    """A linear model trained with its own SGD; it knows nothing of lrsched_pl."""

    def __init__(self, lr: float = 0.1, width: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(width, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


class RandomData(pl.LightningDataModule):
    """Fixed random regression data: ``batches`` training batches of 8 per epoch."""

    def __init__(self, batches: int = 4, width: int = 4) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(8 * batches, width, generator=g)
        self.y = torch.randn(8 * batches, 1, generator=g)

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x[:16], self.y[:16]), batch_size=8)


class LRLog(pl.Callback):
    """Writes ``[[global_step, value], ...]`` of the LR (or another param-group ``key``) each optimizer step used to
    ``path`` at the end of training."""

    def __init__(self, path: str = "lrs.json", key: str = "lr") -> None:
        self.path, self.key, self.rows = path, key, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows.append([trainer.global_step, trainer.optimizers[0].param_groups[0][self.key]])

    def on_train_end(self, trainer, pl_module):
        Path(self.path).write_text(json.dumps(self.rows))
