"""MNIST-1D (Greydanus 2020): 1-D signals of 40 points, 10 classes, generated offline by the ``mnist1d`` package.

The package's ``get_dataset`` downloads a pickle; this module never calls it. It generates the set with
``make_dataset(get_dataset_args())`` (a few seconds) and caches the arrays in
``<cache_dir>/mnist1d-<hash of the arguments>.npz``, so every run with the same arguments reads the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from lrsched_pl.errors import ConfigValueError, check_int


def default_cache_dir() -> Path:
    """``$LRSCHED_PL_CACHE``, else ``$XDG_CACHE_HOME/lrsched_pl``, else ``~/.cache/lrsched_pl``."""
    if os.environ.get("LRSCHED_PL_CACHE"):
        return Path(os.environ["LRSCHED_PL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lrsched_pl"


def _package() -> Any:
    """The ``mnist1d`` package (its ``data`` and ``utils`` modules loaded), or an error that says how to install it."""
    try:
        import mnist1d.data
        import mnist1d.utils
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"data=mnist1d generates its data with the `mnist1d` package ({error}); install it with "
            "pip install 'lrsched_pl[workloads]' (or pip install mnist1d)"
        ) from error
    return mnist1d


def dataset_args(num_samples: int = 5000, seed: int = 42) -> dict[str, Any]:
    """The package's ``get_dataset_args()`` (the paper's set), with ``num_samples`` and ``seed`` replaced."""
    args = _package().data.get_dataset_args(as_dict=True)
    args.update(num_samples=num_samples, seed=seed)
    args.pop("url", None)  # only get_dataset's download uses it
    return args


def generate(args: dict[str, Any], cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """``{"x", "y", "x_test", "y_test"}`` of ``make_dataset(args)``, read from the cache when generated before.

    ``make_dataset`` re-seeds NumPy's and ``random``'s global generators; their states are restored afterwards so
    generating the data does not change a run's seeded randomness.
    """
    package = _package()
    make_dataset, ObjectView = package.data.make_dataset, package.utils.ObjectView

    key = json.dumps({**args, "mnist1d": metadata.version("mnist1d")}, sort_keys=True)
    path = (cache_dir or default_cache_dir()) / f"mnist1d-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path) as cached:
            return {k: cached[k] for k in cached.files}
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # parallel jobs: each writes its own, the rename is atomic
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


class MNIST1DDataModule(pl.LightningDataModule):
    """MNIST-1D: ``x`` of shape ``(batch, 40)`` (float32), ``y`` in 0..9; validation is the package's test split.

    With the defaults this is the paper's set: 5,000 samples, the first 80% (4,000) for training, the last 1,000
    for testing, generated with seed 42. The paper evaluates on the test split, so ``val/acc`` is its test accuracy.

    Args:
        batch_size: Training samples per batch (the paper: 100).
        num_samples: Samples generated in all, int >= 100 (``num_samples // 10`` per class).
        seed: Seed of the generator (the paper's set: 42), independent of the training seed.
        cache_dir: Where generated arrays are kept; ``None``: :func:`default_cache_dir`.
        num_workers: DataLoader workers; 0 (the main process) is fastest for this small set.
    """

    def __init__(
        self,
        batch_size: int = 100,
        num_samples: int = 5000,
        seed: int = 42,
        cache_dir: str | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        try:
            check_int("batch_size", batch_size, 1)
            check_int("num_samples", num_samples, 100)
            check_int("seed", seed, 0)
            check_int("num_workers", num_workers, 0)
        except ConfigValueError as error:
            raise error.under("data") from None
        self.batch_size, self.num_samples, self.seed = batch_size, num_samples, seed
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.num_workers = num_workers
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        data = generate(dataset_args(self.num_samples, self.seed), self.cache_dir)
        as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        as_y = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
        self.train_set = TensorDataset(as_x(data["x"]), as_y(data["y"]))
        self.val_set = TensorDataset(as_x(data["x_test"]), as_y(data["y_test"]))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1000, num_workers=self.num_workers)

