"""A real English text corpus that ships with every CPython: the Python reference manual's topics, as byte tokens.

``pydoc_data.topics.topics`` (what ``help("assert")`` prints) holds ~80 sections of the language reference, about
465,000 characters of English prose with code examples (CPython 3.11.7). It is on every machine that runs Python,
so nothing is downloaded; its content follows the Python version, so :func:`corpus_info` records the version, the
size and a SHA-256 next to any result. Tokens are the text's UTF-8 bytes (vocabulary 256): :func:`decode` of
:func:`encode` gives back any string exactly.
"""

from __future__ import annotations

import hashlib
import platform

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from lrsched_pl.errors import ConfigValueError, check_float, check_int

VOCAB_SIZE = 256  # byte tokens


def corpus() -> str:
    """The topics, sorted by name and separated by blank lines (a fixed order, whatever the dict's)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def corpus_info() -> dict[str, str | int]:
    """What identifies the corpus: the Python version, characters, bytes and the SHA-256 of its UTF-8 bytes."""
    text = corpus()
    data = text.encode("utf-8")
    return {"python": platform.python_version(), "chars": len(text), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip


def encode(text: str) -> torch.Tensor:
    """The UTF-8 bytes of ``text`` as a ``long`` tensor of token ids in 0..255."""
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


def decode(tokens: torch.Tensor) -> str:
    """The text whose UTF-8 bytes are ``tokens`` (strict: a cut multi-byte character raises ``UnicodeDecodeError``)."""
    return bytes(tokens.tolist()).decode("utf-8")


class Blocks(Dataset):
    """Consecutive windows of ``block_size + 1`` tokens, as ``(inputs, targets)`` shifted by one."""

    def __init__(self, tokens: torch.Tensor, block_size: int) -> None:
        self.tokens, self.block_size = tokens, block_size

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = index * self.block_size
        chunk = self.tokens[start : start + self.block_size + 1]
        return chunk[:-1], chunk[1:]


class PydocTopicsDataModule(pl.LightningDataModule):
    """Byte-level language modelling on :func:`corpus`: the first ``1 - val_fraction`` for training, the rest held out.

    Args:
        block_size: Tokens per training sequence (the context length), int >= 2.
        batch_size: Sequences per training batch.
        val_fraction: Share of the corpus (its end) held out for validation, in (0, 0.5].
        num_workers: DataLoader workers.
    """

    def __init__(
        self, block_size: int = 64, batch_size: int = 32, val_fraction: float = 0.1, num_workers: int = 0
    ) -> None:
        super().__init__()
        try:
            check_int("block_size", block_size, 2)
            check_int("batch_size", batch_size, 1)
            check_float("val_fraction", val_fraction, 0.0, 0.5, low_open=True)
            check_int("num_workers", num_workers, 0)
        except ConfigValueError as error:
            raise error.under("data") from None
        self.block_size, self.batch_size = block_size, batch_size
        self.val_fraction, self.num_workers = val_fraction, num_workers
        self.train_set: Blocks | None = None
        self.val_set: Blocks | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        tokens = encode(corpus())
        split = int(len(tokens) * (1 - self.val_fraction))
        self.train_set = Blocks(tokens[:split], self.block_size)
        self.val_set = Blocks(tokens[split:], self.block_size)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256, num_workers=self.num_workers)
