"""The real workloads (issue #14): MNIST-1D and the byte-level LM — data, determinism, no network, the models train."""

from __future__ import annotations

import importlib.util
import math
import random
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import f32_equal, read_scalars

from lrsched_pl.errors import ConfigValueError
from lrsched_pl.lm import CausalLM, char_starts
from lrsched_pl.mnist1d_data import MNIST1DDataModule
from lrsched_pl.models_1d import CNN1D, MLP1D
from lrsched_pl.run import train
from lrsched_pl.text_data import PydocTopicsDataModule, corpus, corpus_info, decode, encode

needs_mnist1d = pytest.mark.skipif(
    importlib.util.find_spec("mnist1d") is None, reason="data=mnist1d needs the mnist1d package (the workloads extra)"
)


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way to open a connection raises :class:`NetworkBlocked` while the test runs."""

    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"network access attempted: {args!r}")

    class Socket(socket.socket):
        def connect(self, *args, **kwargs):
            refuse(*args)

    monkeypatch.setattr(socket, "socket", Socket)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_the_network_block_catches_a_download(no_network: None) -> None:
    import urllib.request

    with pytest.raises(NetworkBlocked):
        urllib.request.urlopen("http://example.com", timeout=1)


# ---------------------------------------------------------------------------------------------- MNIST-1D
@pytest.fixture(scope="module")
def paper_set(tmp_path_factory: pytest.TempPathFactory) -> MNIST1DDataModule:
    data = MNIST1DDataModule(cache_dir=str(tmp_path_factory.mktemp("cache")))
    data.setup()
    return data


@needs_mnist1d
def test_mnist1d_is_the_papers_set_split_80_20(paper_set: MNIST1DDataModule) -> None:
    from mnist1d.data import get_dataset_args, make_dataset

    x, y = paper_set.train_set.tensors
    x_val, y_val = paper_set.val_set.tensors
    assert x.shape == (4000, 40) and x_val.shape == (1000, 40) and x.dtype == torch.float32
    assert y.dtype == torch.long and sorted(torch.cat([y, y_val]).bincount().tolist()) == [500] * 10
    reference = make_dataset(get_dataset_args())  # the package itself, with the paper's arguments
    assert torch.equal(x, torch.as_tensor(reference["x"], dtype=torch.float32))
    assert torch.equal(y_val, torch.as_tensor(reference["y_test"]))
    batch = next(iter(paper_set.train_dataloader()))
    assert batch[0].shape == (100, 40) and batch[1].shape == (100,)


@needs_mnist1d
def test_mnist1d_is_generated_offline_deterministically_and_cached(tmp_path: Path, no_network: None) -> None:
    np_state, py_state = np.random.get_state(), random.getstate()
    first = MNIST1DDataModule(num_samples=300, seed=7, cache_dir=str(tmp_path / "a"))
    first.setup()
    assert len(list((tmp_path / "a").glob("mnist1d-*.npz"))) == 1
    again = MNIST1DDataModule(num_samples=300, seed=7, cache_dir=str(tmp_path / "b"))  # generated anew
    cached = MNIST1DDataModule(num_samples=300, seed=7, cache_dir=str(tmp_path / "a"))  # read from the cache
    other = MNIST1DDataModule(num_samples=300, seed=8, cache_dir=str(tmp_path / "a"))
    for data in (again, cached, other):
        data.setup()
    for data in (again, cached):
        assert all(torch.equal(a, b) for a, b in zip(first.train_set.tensors, data.train_set.tensors))
    assert not torch.equal(first.train_set.tensors[0], other.train_set.tensors[0])
    assert len(list((tmp_path / "a").glob("mnist1d-*.npz"))) == 2
    # the package re-seeds the global generators; the module gives them back as they were
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MNIST1DDataModule(batch_size=0), "`data.batch_size` must be an int >= 1, got 0"),
        (lambda: MNIST1DDataModule(num_samples=50), "`data.num_samples` must be an int >= 100, got 50"),
        (lambda: PydocTopicsDataModule(val_fraction=0.9), "`data.val_fraction` must be in (0, 0.5], got 0.9"),
        (lambda: PydocTopicsDataModule(block_size=1), "`data.block_size` must be an int >= 2, got 1"),
        (lambda: CNN1D(None, channels=0), "`model.channels` must be an int >= 1, got 0"),
        (lambda: MLP1D(None, hidden=2.5), "`model.hidden` must be an int >= 1, got 2.5"),
        (lambda: CausalLM(None, d_model=64, nhead=3), "`model.nhead` must be a divisor of d_model=64, got 3"),
        (lambda: CausalLM(None, dropout=1.0), "`model.dropout` must be in [0, 1), got 1.0"),
    ],
)
def test_bad_values_name_the_key(build, message: str) -> None:
    with pytest.raises(ConfigValueError) as error:
        build()
    assert str(error.value) == message


# ---------------------------------------------------------------------------------------------- the text corpus
def test_byte_tokens_round_trip_the_corpus_and_any_text() -> None:
    text = corpus()
    assert len(text) > 300_000 and decode(encode(text)) == text
    for sample in ("naïve café → ✓ 𝄞", "", "\x00\n\t"):
        tokens = encode(sample)
        assert decode(tokens) == sample and int(char_starts(tokens)) == len(sample)
        assert tokens.dtype == torch.long and (len(tokens) == 0 or int(tokens.max()) < 256)


def test_text_data_is_fixed_offline_and_shifted_by_one(no_network: None) -> None:
    assert corpus_info() == corpus_info() and len(corpus_info()["sha256"]) == 64
    data = PydocTopicsDataModule(block_size=16, batch_size=4, val_fraction=0.1)
    data.setup()
    tokens = encode(corpus())
    split = int(len(tokens) * 0.9)
    inputs, targets = next(iter(data.val_dataloader()))
    assert inputs.shape[1] == 16 and torch.equal(inputs[0], tokens[split : split + 16])
    assert torch.equal(targets[0], tokens[split + 1 : split + 17])
    rebuilt = torch.cat([data.train_set[k][0] for k in range(len(data.train_set))])
    assert torch.equal(rebuilt, tokens[: len(rebuilt)]) and len(rebuilt) > split - 17
    assert next(iter(data.train_dataloader()))[0].shape == (4, 16)


def test_the_lm_is_causal() -> None:
    """Logits at positions before ``i`` do not change when token ``i`` changes (the demo model's leak is absent)."""
    torch.manual_seed(0)
    model = CausalLM(None, block_size=12).eval()
    tokens = torch.randint(0, 256, (2, 12))
    changed = tokens.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 256
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6) and not torch.allclose(a[:, 7:], b[:, 7:])


# ---------------------------------------------------------------------------------------------- the models train
TRAIN = ["schedule=cosine", "trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
         "trainer.enable_progress_bar=false", "~callbacks.model_checkpoint"]  # fmt: skip


@pytest.mark.parametrize(
    ("workload", "tag"),
    [pytest.param(["data=mnist1d", "model=cnn1d", "optimizer=adam"], "lr-Adam", marks=needs_mnist1d),
     pytest.param(["data=mnist1d", "model=mlp1d", "optimizer=adam"], "lr-Adam", marks=needs_mnist1d),
     (["data=pydoc_topics", "model=transformer_lm", "optimizer=adamw"], "lr-AdamW")],
    ids=["cnn1d", "mlp1d", "transformer_lm"],
)  # fmt: skip
def test_the_new_models_train_under_the_schedule_callback(
    compose, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workload: list[str], tag: str
) -> None:
    monkeypatch.setenv("LRSCHED_PL_CACHE", str(tmp_path / "cache"))
    cfg = compose(*workload, "optimizer.lr=0.01", *TRAIN)
    objective = train(cfg)
    lrs = read_scalars(tmp_path, tag)
    assert [s for s, _ in lrs] == list(range(6))  # 2 epochs x 3 batches, cosine over the whole run
    for step, value in lrs:
        assert f32_equal(value, 0.01 * (1 + math.cos(math.pi * step / 6)) / 2), (step, value)
    val_loss = read_scalars(tmp_path, "val/loss")
    assert len(val_loss) == 2 and objective == pytest.approx(val_loss[-1][1], rel=1e-6)
    assert len(read_scalars(tmp_path, "train/loss")) == 6
    if "model=transformer_lm" in workload:  # bits per character over the validated batch's target characters
        data = corpus().encode("utf-8")
        start = int(len(data) * 0.9) + 1  # the first validation batch's targets: 256 blocks of 64, in a row
        chars = len(data[start : start + 256 * 64].decode("utf-8"))  # (both ends are character boundaries)
        assert chars < 256 * 64  # non-ASCII characters are in it: bits per byte would differ
        bpc = read_scalars(tmp_path, "val/bpc")
        assert [s for s, _ in bpc] == [s for s, _ in val_loss]
        assert bpc[-1][1] == pytest.approx(val_loss[-1][1] * 256 * 64 / math.log(2) / chars, rel=1e-5)
    else:
        assert len(read_scalars(tmp_path, "val/acc")) == 2
