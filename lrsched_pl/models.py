"""The default model: a small MLP classifier, meant to be subclassed or replaced by your own module."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lrsched_pl.param_groups import ParamGroupBuilder, make_optimizer

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


class Classifier(pl.LightningModule):
    """An MLP classifier that logs ``train/loss``, ``val/loss`` and ``val/acc``.

    The optimizer comes from the ``optimizer`` config group as a factory (a ``functools.partial`` that Hydra
    builds from ``_partial_: true``); ``configure_optimizers`` calls it on the parameters, or on the groups of the
    ``param_groups`` config group's builder, and returns no LR scheduler, since the ScheduleCallback owns the
    learning rate.

    Args:
        optimizer: Callable taking the parameters and returning an optimizer.
        num_features: Input size (64 for the digits).
        num_classes: Output classes.
        hidden: Width of each hidden layer; ``[]`` gives a linear model.
        dropout: Dropout after each hidden layer.
        param_groups: A param-group builder (:mod:`lrsched_pl.param_groups`); ``None``: one group.
    """

    def __init__(
        self,
        optimizer: OptimizerFactory,
        num_features: int = 64,
        num_classes: int = 10,
        hidden: list[int] | tuple[int, ...] = (128,),
        dropout: float = 0.0,
        param_groups: ParamGroupBuilder | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "param_groups"])
        self.optimizer_factory = optimizer
        self.param_groups = param_groups
        layers: list[nn.Module] = []
        width = num_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), prog_bar=True)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def layer_id(self, name: str) -> int:
        """The layer of parameter ``name`` for ``param_groups=layer_decay``: the k-th Linear (from 0), the head last."""
        index = int(name.split(".")[1])  # net.<index>.weight
        return sum(isinstance(m, nn.Linear) for m in self.net[:index])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_factory, self, self.param_groups)
