"""A small causal transformer language model over byte tokens, built from torch's own transformer layers.

Lightning's ``lightning.pytorch.demos.Transformer`` (2.6.6) was the first choice, but it does not fit a language
model's metric: it is an encoder-decoder whose decoder is fed the *targets* under a causal mask, so position ``i``
sees ``target[i]``, the token it predicts (the loss falls towards 0 without learning the language), and its
``PositionalEncoding`` adds one and the same vector (``pe[:, x.size(1)]``) at every position. This module is the
decoder-only shape instead: token and learned position embeddings, ``torch.nn.TransformerEncoder`` (pre-norm) with a
causal mask, a linear head.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from lrsched_pl.errors import ConfigValueError, check_float, check_int
from lrsched_pl.models import OptimizerFactory


def char_starts(tokens: torch.Tensor) -> torch.Tensor:
    """How many UTF-8 characters begin in ``tokens`` (bytes that are not continuation bytes ``0b10xxxxxx``)."""
    return ((tokens & 0xC0) != 0x80).sum()


class CausalLM(pl.LightningModule):
    """Next-token prediction; logs ``train/loss``, ``val/loss`` (nats per token) and ``val/bpc``.

    ``val/bpc`` (bits per character) = the summed negative log-likelihood of the validation tokens in bits divided
    by the number of characters they hold: ``sum(nll) / ln 2 / characters``. With byte tokens a character is one to
    four bytes, counted by its first byte (:func:`char_starts`); on ASCII text bits per character equal bits per byte.

    Args:
        optimizer: Callable taking the parameters and returning an optimizer.
        vocab_size: Token ids are in ``[0, vocab_size)`` (256 for bytes).
        block_size: The longest sequence the position embedding covers.
        d_model: Width of the embeddings and of every layer.
        nhead: Attention heads, dividing ``d_model``.
        num_layers: Transformer layers.
        dim_feedforward: Width of each layer's feed-forward block.
        dropout: Dropout in the layers.
    """

    def __init__(
        self,
        optimizer: OptimizerFactory,
        vocab_size: int = 256,
        block_size: int = 64,
        d_model: int = 64,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        try:
            for key, value, low in (("vocab_size", vocab_size, 2), ("block_size", block_size, 1),
                                    ("d_model", d_model, 1), ("nhead", nhead, 1), ("num_layers", num_layers, 1),
                                    ("dim_feedforward", dim_feedforward, 1)):  # fmt: skip
                check_int(key, value, low)
            if d_model % nhead:
                raise ConfigValueError("nhead", nhead, f"a divisor of d_model={d_model}")
            check_float("dropout", dropout, 0.0, 1.0, high_open=True)
        except ConfigValueError as error:
            raise error.under("model") from None
        self.save_hyperparameters(ignore=["optimizer"])
        self.optimizer_factory = optimizer
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(block_size, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self._nll_bits = self._chars = 0.0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, length, vocab)``; position ``i`` sees ``tokens[: i + 1]`` only."""
        length = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        h = self.token(tokens) + self.position(torch.arange(length, device=tokens.device))
        return self.head(self.norm(self.blocks(h, mask=mask, is_causal=True)))

    def _nll(self, batch: tuple[torch.Tensor, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
        inputs, targets = batch
        return F.cross_entropy(self(inputs).flatten(0, 1), targets.flatten(), reduction=reduction)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._nll(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._nll_bits = self._chars = 0.0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        nll = self._nll(batch, reduction="sum")
        self._nll_bits += float(nll) / math.log(2)
        self._chars += float(char_starts(batch[1]))
        self.log("val/loss", nll / batch[1].numel(), prog_bar=True, batch_size=batch[1].numel())

    def on_validation_epoch_end(self) -> None:
        if self._chars:
            self.log("val/bpc", self._nll_bits / self._chars, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
