"""The sweep report: numbers checked by hand on synthetic event files, a partial sweep, and a real sweep's CLI."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from lrsched_pl.report import EmptySweepError, main, write_report

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
SD = 0.1767766952966369  # sample std (ddof=1) of two values 0.25 apart: sqrt(2 * 0.125**2 / 1)
FIGURES = ["lr.png", "val_loss.png", "val_acc.png", "final_metric.png"]


def write_multirun(sweep: Path, task: list[str], sweeper: str = BASIC) -> None:
    """A ``multirun.yaml`` with the keys the report reads."""
    sweep.mkdir(parents=True, exist_ok=True)
    hydra = {"sweeper": {"_target_": sweeper, "max_batch_size": None, "params": None}, "overrides": {"task": task}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra}))


def write_job(
    sweep: Path,
    overrides: list[str],
    loss: list[float] | None,
    acc: list[float] | None = None,
    epochs: list[int] | None = None,
    wall: float = 10.0,
    hparams: dict | None = None,
) -> Path:
    """A job directory like Hydra's and Lightning's: ``.hydra/overrides.yaml`` and real TensorBoard events.

    Validation ``k`` is logged at step ``5k + 4`` with ``epoch`` = ``epochs[k]`` (no ``epoch`` scalar when
    ``epochs`` is None), the last event ``wall`` seconds after the writer opened. ``loss=None``: no event file.
    """
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    job = sweep / ",".join(sorted(overrides))
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if loss is None:
        return job
    t0 = time.time()
    writer = SummaryWriter(str(job))
    hp = {"schedule": "constant", "schedule_params": "interval=epoch", "optimizer": "SGD", "lr": 0.1, "seed": 1}
    for summary in hparams_summaries({**hp, **(hparams or {})}, {}):
        writer._get_file_writer().add_summary(summary)
    for k, value in enumerate(loss):
        step, at = 5 * k + 4, t0 + wall * (k + 1) / len(loss)
        writer.add_scalar("lr-SGD", 0.1 / (k + 1), step, walltime=at)
        if epochs is not None:
            writer.add_scalar("epoch", epochs[k], step, walltime=at)
        if acc is not None:
            writer.add_scalar("val/acc", acc[k], step, walltime=at)
        writer.add_scalar("val/loss", value, step, walltime=at)
    writer.close()
    return job


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """Three configurations with dyadic values (exact in float32); the numbers in the tests are worked by hand."""
    sweep = tmp_path / "grid"  # no multirun.yaml: nothing to expand
    write_job(sweep, ["schedule=constant", "seed=1"], [1.0, 0.75, 0.5], [0.25, 0.5, 0.75], [0, 1, 2], wall=100)
    write_job(sweep, ["schedule=constant", "seed=2"], [1.5, 0.5, 0.75], [0.5, 0.5, 0.5], [0, 1, 2], wall=40)
    step = {"schedule": "step", "schedule_params": "gamma=0.5, step_size=1"}
    # validated every 2nd epoch: epochs 1, 3, 5 (0-based), so 2, 4, 6 in the report
    write_job(sweep, ["schedule=step", "seed=1"], [1.0, 0.875, 0.5], [0.5, 0.75, 0.875], [1, 3, 5], hparams=step)
    write_job(sweep, ["schedule=step", "seed=2"], [1.0, 0.625, 0.25], [0.5, 0.75, 1.0], [1, 3, 5], hparams=step)
    write_job(sweep, ["schedule=cosine", "seed=1"], [2.0, 1.5, 1.0], [0.5, 0.75, 1.0], hparams={"schedule": "cosine"})
    return sweep


def test_table_numbers_match_a_hand_computation(grid: Path, tmp_path: Path) -> None:
    report = write_report(grid, tmp_path / "out", console=False)
    rows = {row.label: row for row in report.rows}
    assert [row.label for row in report.rows] == ["schedule=step", "schedule=constant", "schedule=cosine"]
    const, step, cos = rows["schedule=constant"], rows["schedule=step"], rows["schedule=cosine"]
    assert (const.seeds, step.seeds, cos.seeds) == (2, 2, 1)
    # constant: finals 0.5, 0.75; bests 0.5, 0.5; acc finals 0.75, 0.5 and bests 0.75, 0.5
    assert (const.final["val/loss"].mean, const.final["val/loss"].std) == pytest.approx((0.625, SD))
    assert (const.best["val/loss"].mean, const.best["val/loss"].std) == (0.5, 0.0)
    assert (const.final["val/acc"].mean, const.final["val/acc"].std) == pytest.approx((0.625, SD))
    assert (const.best["val/acc"].mean, const.best["val/acc"].std) == pytest.approx((0.625, SD))
    assert (step.final["val/loss"].mean, step.final["val/loss"].std) == pytest.approx((0.375, SD))
    assert (cos.final["val/loss"].mean, cos.final["val/loss"].std) == (1.0, 0.0)
    # baseline best = min of the seed-mean curve [1.25, 0.625, 0.625] = 0.625
    # constant reaches it at epoch 2; step's mean [1.0, 0.75, 0.375] at its 3rd validation, epoch 5 + 1
    assert (const.epochs_to_baseline, step.epochs_to_baseline, cos.epochs_to_baseline) == (2, 6, None)
    assert const.baseline == step.baseline == "schedule=constant" and const.notes == ["baseline"]
    assert const.wall_s == pytest.approx(70.0, abs=0.5)  # (100 + 40) / 2
    assert report.missing == [] and report.incomplete == []

    md = report.markdown.read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 3  # header + one row per configuration
    constant_row = "| schedule=constant | constant | interval=epoch | SGD | 0.1 | 2 | 0.6250 ± 0.1768 | 0.5000 ± 0"
    assert constant_row in md
    assert "| 6 |" in table[1] and "| not reached |" in table[3] and "| 1.0000 | 1.0000 |" in table[3]
    assert "minimum over epochs of its seed-mean `val/loss`" in md
    records = {r["label"]: r for r in csv.DictReader(report.csv.read_text().splitlines())}
    assert float(records["schedule=step"]["final_val_loss_std"]) == pytest.approx(SD)
    assert records["schedule=cosine"]["epochs_to_baseline_best"] == "not reached"
    assert records["schedule=step"]["epochs_to_baseline_best"] == "6"

    by_acc = write_report(grid, tmp_path / "acc", metric="val/acc", console=False)
    assert [row.label for row in by_acc.rows] == ["schedule=cosine", "schedule=step", "schedule=constant"]


def test_partial_sweep_reports_what_is_there_and_what_is_missing(tmp_path: Path) -> None:
    sweep = tmp_path / "partial"
    write_multirun(sweep, ["schedule=constant,step", "seed=1,2,3"])
    write_job(sweep, ["schedule=constant", "seed=1"], [1.0, 0.75, 0.5], epochs=[0, 1, 2])
    write_job(sweep, ["schedule=constant", "seed=2"], [1.0, 0.5], epochs=[0, 1])  # still running
    truncated = write_job(sweep, ["schedule=constant", "seed=3"], [1.0, 0.5, 0.25], epochs=[0, 1, 2])
    events = next(truncated.glob("events.out.tfevents.*"))
    events.write_bytes(events.read_bytes()[:-5])  # killed mid-write: the last val/loss record is cut
    write_job(sweep, ["schedule=step", "seed=1"], None)  # failed before logging
    empty = write_job(sweep, ["schedule=step", "seed=3"], None)
    (empty / "events.out.tfevents.0.host.1.0").write_bytes(b"")  # opened, nothing flushed yet
    # schedule=step,seed=2: no directory at all

    report = write_report(sweep, console=False)
    assert [row.label for row in report.rows] == ["schedule=constant"]
    assert report.rows[0].seeds == 3
    epochs, mean, std = report.rows[0].mean_curve("val/loss")  # each epoch over the seeds that reached it
    assert epochs == [1, 2, 3] and mean == pytest.approx([1.0, 7 / 12, 0.5])  # (0.75 + 0.5 + 0.5) / 3
    assert std == pytest.approx([0.0, (1 / 48) ** 0.5, 0.0])  # squares 1/36 + 2/144 over n - 1 = 2
    assert sorted(report.missing) == [
        "schedule=step,seed=1: no event file yet",
        "schedule=step,seed=2: not started, no job directory",
        "schedule=step,seed=3: no val/loss logged yet",
    ]
    assert report.incomplete == [
        "schedule=constant,seed=2: incomplete (2 of 3 epochs)",
        "schedule=constant,seed=3: incomplete (2 of 3 epochs)",
    ]
    assert "seed=2 incomplete (2 of 3 epochs)" in report.rows[0].notes
    md = report.markdown.read_text()
    assert "## Missing" in md and "schedule=step,seed=2: not started, no job directory" in md and "## Incomplete" in md
    assert all(p.stat().st_size > 1000 for p in report.figures)


def test_no_baseline_says_why_and_a_plateau_on_constant_is_no_baseline(tmp_path: Path) -> None:
    sweep = tmp_path / "optuna"
    write_multirun(sweep, ["hparams_search=step_optuna"], sweeper=OPTUNA)
    write_job(sweep, ["schedule=step"], [1.0, 0.5], hparams={"schedule": "step"})
    plateau = {"schedule_params": "interval=epoch | plateau: factor=0.5, patience=2"}
    write_job(sweep, ["plateau=val_loss", "schedule=constant"], [1.0, 0.25], hparams=plateau)

    report = write_report(sweep, console=False)
    assert report.missing == []  # an Optuna sweep is not expanded
    assert [(row.baseline, row.epochs_to_baseline) for row in report.rows] == [(None, None), (None, None)]
    md = report.markdown.read_text()
    assert md.count("| n/a |") == 2 and "no `constant` configuration without a plateau" in md
    assert "plateau: factor=0.5" in md and "\\| plateau:" in md  # escaped inside the Markdown table


def test_each_configuration_is_compared_with_the_constant_run_of_its_optimizer(tmp_path: Path) -> None:
    sweep = tmp_path / "optimizers"
    adam = {"optimizer": "Adam"}
    write_job(sweep, ["schedule=constant"], [1.0, 0.5, 0.25])  # SGD: best 0.25
    write_job(sweep, ["optimizer=adam", "schedule=constant"], [1.0, 0.75, 0.625], hparams=adam)  # Adam: best 0.625
    write_job(sweep, ["optimizer=adam", "schedule=cosine"], [0.875, 0.625, 0.5], hparams={**adam, "schedule": "cosine"})
    write_job(sweep, ["schedule=cosine"], [0.875, 0.625, 0.5], hparams={"schedule": "cosine"})

    rows = {row.label: row for row in write_report(sweep, console=False).rows}
    assert rows["optimizer=adam,schedule=cosine"].baseline == "optimizer=adam,schedule=constant"
    assert rows["optimizer=adam,schedule=cosine"].epochs_to_baseline == 2
    assert rows["schedule=cosine"].baseline == "schedule=constant"
    assert rows["schedule=cosine"].epochs_to_baseline is None


def test_an_empty_sweep_dir_exits_with_code_2_naming_it(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lrsched_pl.report", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and f"no sweep jobs in {tmp_path}" in proc.stderr, proc.stderr
    write_job(tmp_path, ["schedule=step"], None)  # jobs, but none with results
    with pytest.raises(EmptySweepError, match="no job in .* has logged val/loss yet: schedule=step: no event file"):
        write_report(tmp_path, console=False)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2


def test_help_documents_the_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(s in out for s in ("SWEEP_DIR", "--out DIR", "--metric {val/loss,val/acc}", "not reached"))


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python train.py -m schedule=constant,step seed=1,2``, 3 short epochs: 4 real jobs (~20 s)."""
    sweep = tmp_path_factory.mktemp("real") / "sweep"
    cmd = [sys.executable, "train.py", "-m", "schedule=constant,step", "seed=1,2", "trainer.max_epochs=3",
           "trainer.limit_train_batches=5", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


@pytest.mark.slow
def test_cli_on_a_real_sweep_writes_the_table_and_four_figures(real_sweep: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "lrsched_pl.report", str(real_sweep), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "schedule=constant" in proc.stdout and "baseline" in proc.stdout and str(out) in proc.stdout
    for name in FIGURES:
        image = imread(out / name)
        assert image.shape[0] >= 250 and image.shape[1] >= 600 and image.shape[2] in (3, 4), (name, image.shape)
        assert image.std() > 0.01  # drawn, not blank
    md = (out / "report.md").read_text()
    assert len([line for line in md.splitlines() if line.startswith("| schedule=")]) == 2
    assert "## Missing" not in md and "`trainer.max_epochs=3`" in md
    records = list(csv.DictReader((out / "report.csv").read_text().splitlines()))
    assert [r["seeds"] for r in records] == ["2", "2"] and {r["schedule"] for r in records} == {"constant", "step"}
    assert all(r["optimizer"] == "SGD" and float(r["lr"]) == 0.1 and float(r["training_time_s"]) > 0 for r in records)


@pytest.mark.slow
def test_real_sweep_rows_and_a_job_gone_missing(real_sweep: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(real_sweep, sweep, ignore=shutil.ignore_patterns("*.ckpt", "report"))
    report = write_report(sweep, console=False)
    assert report.missing == []  # every job Hydra's BasicSweeper expands has its directory
    constant = next(row for row in report.rows if row.schedule == "constant")
    assert constant.label == "schedule=constant,trainer.limit_train_batches=5,trainer.max_epochs=3"
    assert constant.short == "schedule=constant" and constant.notes == ["baseline"]
    assert constant.epochs_to_baseline in (1, 2, 3) and [len(r.lr["lr-SGD"]) for r in constant.runs] == [15, 15]
    assert all(len(r.curves["val/loss"]) == 3 and r.hparams["optimizer"] == "SGD" for r in constant.runs)

    gone = next(d for d in sweep.iterdir() if d.name.startswith("schedule=step,seed=2"))
    shutil.rmtree(gone)
    report = write_report(sweep, console=False)
    assert report.missing == [f"{gone.name}: finished, no job directory"]  # its record says it finished
    assert next(row for row in report.rows if row.schedule == "step").seeds == 1
