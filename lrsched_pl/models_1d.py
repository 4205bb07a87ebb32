"""The MNIST-1D paper's MLP and CNN (``notebooks/models.py`` of greydanus/mnist1d), as :class:`Classifier`\\ s.

Both reuse :class:`lrsched_pl.models.Classifier`'s steps (``train/loss``, ``val/loss``, ``val/acc``) and its
``optimizer`` factory; only the network differs.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lrsched_pl.errors import ConfigValueError, check_int
from lrsched_pl.models import Classifier, OptimizerFactory


def _checked(**ints: tuple[int, int]) -> None:
    """Each ``key=(value, low)`` must be an int >= low; the error names ``model.<key>``."""
    try:
        for key, (value, low) in ints.items():
            check_int(key, value, low)
    except ConfigValueError as error:
        raise error.under("model") from None


class _Net1D(Classifier):
    """A :class:`Classifier` whose network a subclass builds (``self.net``) instead of the default MLP."""

    def __init__(self, optimizer: OptimizerFactory, num_classes: int, net: nn.Module) -> None:
        pl.LightningModule.__init__(self)  # Classifier.__init__ would build the MLP this replaces
        self.optimizer_factory = optimizer
        self.param_groups = None  # one group: these models take no `param_groups` builder
        self.net = net
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")


class _ResidualMLP(nn.Module):
    """``h = relu(W1 x); h = h + relu(W2 h); logits = W3 h`` (the paper's ``MLPBase``)."""

    def __init__(self, num_features: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(num_features, hidden), nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)


class MLP1D(_Net1D):
    """The paper's MLP: two hidden layers of ``hidden`` units, the second residual (``MLPBase``, 15,210 parameters).

    Args:
        optimizer: Callable taking the parameters and returning an optimizer.
        num_features: Signal length (40 for MNIST-1D).
        num_classes: Output classes.
        hidden: Hidden width (the paper's default: 100).
    """

    def __init__(
        self, optimizer: OptimizerFactory, num_features: int = 40, num_classes: int = 10, hidden: int = 100
    ) -> None:
        _checked(num_features=(num_features, 1), num_classes=(num_classes, 2), hidden=(hidden, 1))
        super().__init__(optimizer, num_classes, _ResidualMLP(num_features, num_classes, hidden))
        self.save_hyperparameters(ignore=["optimizer"])


def _conv_length(n: int, kernel: int, stride: int = 2, padding: int = 1) -> int:
    return (n + 2 * padding - kernel) // stride + 1


class CNN1D(_Net1D):
    """The paper's CNN (``ConvBase``, 5,210 parameters): three stride-2 convolutions, ReLU, then a linear layer.

    ``Conv1d(1, c, 5, stride=2, padding=1) -> Conv1d(c, c, 3, 2, 1) -> Conv1d(c, c, 3, 2, 1) -> Linear``; a signal of
    40 points leaves the convolutions as ``c x 5`` features.

    Args:
        optimizer: Callable taking the parameters and returning an optimizer.
        num_features: Signal length, int >= 8 (40 for MNIST-1D).
        num_classes: Output classes.
        channels: Channels of each convolution (the paper: 25).
    """

    def __init__(
        self, optimizer: OptimizerFactory, num_features: int = 40, num_classes: int = 10, channels: int = 25
    ) -> None:
        _checked(num_features=(num_features, 8), num_classes=(num_classes, 2), channels=(channels, 1))
        length = _conv_length(_conv_length(_conv_length(num_features, 5), 3), 3)
        net = nn.Sequential(
            nn.Unflatten(1, (1, num_features)),  # (batch, length) -> (batch, 1 channel, length)
            nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(channels * length, num_classes),
        )  # fmt: skip
        super().__init__(optimizer, num_classes, net)
        self.save_hyperparameters(ignore=["optimizer"])
