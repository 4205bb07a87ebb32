"""The preview: the curve a config would train, without training, equal to what training then logs."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, f32_equal, read_scalars

from lrsched_pl.config import OPTIONS
from lrsched_pl.preview import curve, gallery
from lrsched_pl.run import train

SHORT = ["trainer.max_epochs=3", "trainer.limit_train_batches=5", "trainer.accumulate_grad_batches=2"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["schedule=cosine", "schedule.warmup=0.3dur"],
        ["schedule=time_based", "schedule.interval=epoch", "schedule.decay=0.5"],
        ["schedule=step", "schedule.step_size=2", "schedule.interval=step", "trainer.max_steps=7"],
        ["schedule=exponential", "trainer.limit_train_batches=0.25"],
    ],
    ids=["cosine-warmup", "time_based-epoch", "step-max_steps", "exponential-fraction"],
)
def test_preview_equals_the_lr_training_logs_at_every_step(compose, tmp_path: Path, overrides: list[str]) -> None:
    all_overrides = [*SHORT, *overrides]
    preview = curve(all_overrides)
    train(compose(*all_overrides, "trainer.enable_progress_bar=false"))
    logged = {}
    for step, value in read_scalars(tmp_path, "lr-SGD"):
        logged.setdefault(step, value)  # with accumulation the monitor writes one row per micro-batch
    assert sorted(logged) == list(range(len(preview.lr)))
    assert all(f32_equal(logged[k], preview.lr[k]) for k in logged), (logged, preview.lr)


def test_cli_writes_a_png_and_a_csv_of_the_curve(tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    proc = subprocess.run(
        [sys.executable, "-m", "lrsched_pl.preview", "schedule=step", "schedule.step_size=5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert len(rows) == 460 and float(rows[0]["lr"]) == 0.1
    assert float(rows[-1]["lr"]) == pytest.approx(0.1 * 0.5**3)  # epoch 19: three decays


def test_bad_overrides_are_refused_like_train_py(tmp_path: Path) -> None:
    from lrsched_pl.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match="schedule.gamma"):
        curve(["schedule=step", "schedule.gamma=2"])


def test_gallery_has_a_figure_for_every_option(tmp_path: Path) -> None:
    paths = gallery(tmp_path)
    assert sorted(p.stem for p in paths) == sorted(OPTIONS)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_previews_that_differ_in_any_value_write_different_files(tmp_path: Path) -> None:
    """The default file name holds every override in full: 0.1dur and 0.2dur warmups are two files, not one."""
    for warmup in ("0.1dur", "0.2dur"):
        proc = subprocess.run(
            [sys.executable, "-m", "lrsched_pl.preview", "schedule=cosine", f"schedule.warmup={warmup}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (tmp_path / "outputs" / "preview").iterdir())
    assert written == [
        "schedule=cosine_schedule.warmup=0.1dur.csv",
        "schedule=cosine_schedule.warmup=0.1dur.png",
        "schedule=cosine_schedule.warmup=0.2dur.csv",
        "schedule=cosine_schedule.warmup=0.2dur.png",
    ]
    first = list(csv.DictReader(open(tmp_path / "outputs" / "preview" / written[0])))
    assert float(first[46]["lr"]) == pytest.approx(0.1)  # 10% of 460 steps: the warmup ends at step 46
