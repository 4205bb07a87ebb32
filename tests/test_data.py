"""The default data: scikit-learn's digits, and its label-noise variant (data=digits_noisy)."""

from __future__ import annotations

import pytest
import torch

from lrsched_pl.data import DigitsDataModule


def labels(module: DigitsDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    module.setup("fit")
    return module.train_set.tensors[1], module.val_set.tensors[1]


def test_label_noise_replaces_that_share_of_training_labels_only() -> None:
    clean_train, clean_val = labels(DigitsDataModule())
    noisy_train, noisy_val = labels(DigitsDataModule(label_noise=0.4))
    assert torch.equal(noisy_val, clean_val)  # validation measures the real task
    changed = (noisy_train != clean_train).float().mean().item()
    assert changed == pytest.approx(0.4 * 9 / 10, abs=0.04)  # a random class is the true one 1 time in 10
    assert torch.equal(labels(DigitsDataModule(label_noise=0.4))[0], noisy_train)  # fixed by split_seed


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_label_noise_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"`data.label_noise` must be in \[0, 1\), got"):
        DigitsDataModule(label_noise=bad)


def test_digits_noisy_config_sets_the_noise(compose) -> None:
    assert compose("data=digits_noisy").data.label_noise == 0.4
    assert compose().data.label_noise == 0.0
