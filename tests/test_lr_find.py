"""The LR range test: ``python -m lrsched_pl.lr_find`` writes its plot, curve, snippet, command and events; the
command it writes and ``lr_find=true`` both train at the suggestion (the LR at step 0 is the suggestion times the
schedule's factor at t = 0), on the default task."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import pytest
import torch
import yaml
from conftest import f32_equal, read_scalars

from lrsched_pl import lr_find

SHRINK = ["trainer.max_steps=6", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
          "~callbacks.model_checkpoint"]  # fmt: skip
CLI = ["schedule=cosine", "schedule.warmup=2", "schedule.warmup_start_factor=0.5"]


@pytest.fixture(scope="module")
def finder_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CLI range test (100 steps on the default task), shared by the tests."""
    out = tmp_path_factory.mktemp("lr_find")
    assert lr_find.main([*CLI, "--out", str(out)]) == 0
    return out


def _suggested(path: Path) -> tuple[str, float]:
    snippet = yaml.safe_load(path.read_text())
    ((section, values),) = snippet.items()
    ((name, value),) = values.items()
    return f"{section}.{name}", value


def test_cli_writes_plot_curve_snippet_and_events(finder_out: Path) -> None:
    assert (finder_out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line.split(",") for line in (finder_out / "lr_find.csv").read_text().split()[1:]]
    lrs = torch.tensor([float(r[0]) for r in rows], dtype=torch.float64)
    losses = torch.tensor([float(r[1]) for r in rows], dtype=torch.float64)
    assert len(rows) > 12 and bool((lrs[1:] > lrs[:-1]).all())
    # the untrained 10-class model's loss is about ln(10): the curve starts there, not at half of it (unbias)
    assert abs(float(losses[0]) - math.log(10)) < 0.1
    # the suggestion: the steepest descent of the loss against log(lr), from the 11th point to the loss's minimum
    end = 10 + int(torch.argmin(losses[10:]))
    slope = torch.gradient(losses[10:end], spacing=[lrs[10:end].log()])[0]
    expected = float(lrs[10 + int(torch.argmin(slope))])
    key, value = _suggested(finder_out / "suggestion.yaml")
    assert key == "optimizer.lr" and value == float(f"{expected:.4g}")
    command = (finder_out / "command.txt").read_text().strip()
    assert command == shlex.join(["python", "train.py", *CLI, f"optimizer.lr={value:.4g}"])
    assert f32_equal(read_scalars(finder_out, "lr_find/suggestion")[0][1], value)
    assert [s for s, _ in read_scalars(finder_out, "lr_find/loss")] == list(range(len(rows)))


def test_the_written_command_trains_at_the_suggestion(finder_out: Path, compose, tmp_path: Path) -> None:
    from lrsched_pl.run import train

    _, value = _suggested(finder_out / "suggestion.yaml")
    overrides = shlex.split((finder_out / "command.txt").read_text())[2:]
    train(compose(*overrides, *SHRINK))
    step0 = dict(read_scalars(tmp_path, "lr-SGD"))[0]
    assert f32_equal(step0, 0.5 * value)  # the warmup starts at warmup_start_factor * lr0


@pytest.mark.slow
def test_lr_find_true_trains_at_the_suggestion(finder_out: Path, compose, tmp_path: Path) -> None:
    """``lr_find=true schedule=onecycle``: the suggestion (the same as the CLI's: the test does not depend on the
    schedule) goes to ``schedule.max_lr``, and step 0 trains at ``max_lr / div_factor``."""
    from lrsched_pl.run import train

    train(compose("lr_find=true", "schedule=onecycle", *SHRINK))
    key, value = _suggested(tmp_path / "lr_find" / "suggestion.yaml")
    assert (key, value) == ("schedule.max_lr", _suggested(finder_out / "suggestion.yaml")[1])
    assert (tmp_path / "lr_find" / "lr_find.png").is_file()
    assert f32_equal(dict(read_scalars(tmp_path, "lr-SGD"))[0], value / 25.0)  # div_factor 25


def test_bad_arguments_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lr_find.main(["--num-training", "5", "--out", str(tmp_path / "x")]) == 2
    assert "num_training" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
