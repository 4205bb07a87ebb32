"""``lrsched-branch``: cooldown branches of a real run (``train.py``, real Hydra, real Trainers), read back from their
TensorBoard events: the LR at every step is the closed form, the curves start at the parent's step, the parent's
files are unchanged, a ``-m`` sweep of lengths writes the comparison, and bad input is refused in one line before
Lightning is imported."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, f32_equal, read_scalars

from lrsched_pl.branch import TARGET

LR = 0.2
PARENT = ["schedule=constant", "schedule.interval=step", f"optimizer.lr={LR}", "trainer.max_epochs=2",
          "trainer.limit_train_batches=6", "trainer.limit_val_batches=2", "trainer.enable_progress_bar=false",
          "trainer.enable_model_summary=false", "callbacks.model_checkpoint.every_n_train_steps=4",
          "callbacks.model_checkpoint.save_top_k=-1", "callbacks.model_checkpoint.filename='{step}'"]  # fmt: skip
T0 = 4  # the branches start at checkpoints/step=4.ckpt, mid-epoch (6 steps per epoch)
# the published shapes (Hägele et al. 2024), p the cooldown's progress, written here independently of the package
SHAPES = {"linear": lambda p: 1 - p, "cosine": lambda p: (1 + math.cos(math.pi * p)) / 2,
          "1-sqrt": lambda p: 1 - math.sqrt(p)}  # fmt: skip


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}  # fmt: skip


def _run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A 12-step constant-LR run with checkpoints every 4 steps, and the SHA-256 of each of its files."""
    run = tmp_path_factory.mktemp("runs") / "parent"
    proc = _run("train.py", *PARENT, f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "checkpoints" / f"step={T0}.ckpt").is_file()
    return run, _digest(run)


def _expected(t: int, steps: int, shape: str, min_lr: float) -> float:
    return min_lr + (LR - min_lr) * SHAPES[shape]((t - T0) / steps)


def test_a_branch_cools_down_from_the_parents_checkpoint(parent: tuple[Path, dict[str, str]]) -> None:
    run, before = parent
    steps, min_lr = 6, 0.01  # to step 10: across the end of the first epoch, mid-epoch at the end
    proc = _run("-m", "lrsched_pl.branch", str(run), "--ckpt", f"step={T0}", f"cooldown.steps={steps}",
                "cooldown.shape=1-sqrt", f"cooldown.min_lr={min_lr}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    branch = run.parent / "parent_cooldown-1-sqrt-6-min0.01"  # beside the parent, named after it and the cooldown
    assert _digest(run) == before
    lrs = read_scalars(branch, "lr-SGD")
    assert [t for t, _ in lrs] == list(range(T0, T0 + steps))  # its curves start at the parent's step
    for t, value in lrs:
        assert f32_equal(value, _expected(t, steps, "1-sqrt", min_lr)), (t, value)
    assert read_scalars(branch, "train/loss")[0][0] == T0
    assert read_scalars(branch, "val/loss")[-1][0] == T0 + steps - 1  # ends with a validation after `steps` steps
    overrides = (branch / ".hydra" / "overrides.yaml").read_text()
    assert f"optimizer.lr={LR}" in overrides and "trainer.limit_train_batches=6" in overrides  # the parent's setup


@pytest.mark.slow
def test_a_sweep_of_lengths_is_one_command_and_its_report_compares_them(parent: tuple[Path, dict[str, str]]) -> None:
    run, before = parent
    proc = _run("-m", "lrsched_pl.branch", str(run), "--ckpt", f"step={T0}", "-m", "cooldown.steps=2,6",
                "cooldown.shape=linear")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _digest(run) == before
    (sweep,) = run.parent.glob("parent_cooldowns-*")
    finals = {}
    for steps in (2, 6):
        job = sweep / f"cooldown-linear-{steps}"
        lrs = read_scalars(job, "lr-SGD")
        assert [t for t, _ in lrs] == list(range(T0, T0 + steps))
        assert all(f32_equal(v, _expected(t, steps, "linear", 0.0)) for t, v in lrs), lrs
        finals[T0 + steps] = read_scalars(job, "val/loss")[-1][1]
    report = sweep / "report"
    assert (report / "branches.png").stat().st_size > 10_000
    rows = list(csv.DictReader((report / "branches.csv").open()))
    assert [int(r["total_steps"]) for r in rows] == [6, 10]  # one row per branch, by total steps
    for row in rows:
        assert f32_equal(float(row["final_val_loss"]), finals[int(row["total_steps"])])
        assert int(row["start_step"]) == T0 and Path(row["parent"]) == run.resolve()
    parent_loss = dict(read_scalars(run, "val/loss"))  # the parent validated after steps 6 and 12
    assert f32_equal(float(rows[0]["parent_val_loss"]), parent_loss[5]) and rows[0]["parent_step"] == "6"
    markdown = (report / "report.md").read_text()
    assert "## Cooldown branches" in markdown and "![cooldown branches](branches.png)" in markdown
    assert sum(line.startswith("| cooldown-linear-") for line in markdown.splitlines()) == 2
    # branches of different lengths on purpose: not "incomplete", and none is a constant-LR "baseline"
    assert "incomplete" not in markdown and "| baseline" not in markdown and "compared by their total steps" in markdown


BAD = {  # name: (arguments after the run dir, the key named in the one line)
    "no such run": (["{missing}", "cooldown.steps=5"], "RUN_DIR"),
    "not a run": (["{empty}", "cooldown.steps=5"], "RUN_DIR"),
    "no checkpoint": (["{no_ckpt}", "cooldown.steps=5"], "--ckpt"),
    "unknown checkpoint": (["{run}", "--ckpt", "step=5", "cooldown.steps=5"], "--ckpt"),
    "a step before the checkpoint": (["{run}", "--ckpt", "step=8", "cooldown.until=6"], "cooldown.until"),
    "unknown shape": (["{run}", "cooldown.steps=5", "cooldown.shape=sqrt"], "cooldown.shape"),
    "no length": (["{run}", "cooldown.shape=linear"], "cooldown.steps"),
    "a sweep without -m": (["{run}", "cooldown.steps=5,10"], "cooldown.steps"),
    "a length of its own": (["{run}", "cooldown.steps=5", "trainer.max_steps=9"], "trainer.max_steps"),
}
_SCRIPT = """
import contextlib, io, json, sys
from lrsched_pl.branch import main
out = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code
    out[name] = [code, err.getvalue()]
out["lightning imported"] = "lightning" in sys.modules
print(json.dumps(out))
"""


def test_bad_input_is_refused_in_one_line_before_lightning(
    parent: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    run, before = parent
    no_ckpt = tmp_path / "no_ckpt"
    (no_ckpt / ".hydra").mkdir(parents=True)
    (no_ckpt / ".hydra" / "overrides.yaml").write_text("- schedule=constant\n")
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "no_ckpt": no_ckpt, "run": run}
    cases = {name: [a.format(**paths) for a in argv] for name, (argv, _) in BAD.items()}
    proc = _run("-c", _SCRIPT, json.dumps(cases), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results.pop("lightning imported") is False
    for name, (code, stderr) in results.items():
        key = BAD[name][1]
        assert code == 1 and stderr.count("\n") == 1 and stderr.startswith(f"Error: `{key}` "), (name, stderr)
    assert _digest(run) == before and not list(tmp_path.glob("*cooldown*"))


def test_a_fraction_and_the_parents_overrides_compose_into_a_valid_run(
    parent: tuple[Path, dict[str, str]], compose
) -> None:
    """The planned command line (without its hydra.* keys) composes with Hydra and passes the up-front checks."""
    from lrsched_pl.branch import plan
    from lrsched_pl.config import validate

    run = parent[0].resolve()
    args = plan(run, f"step={T0}", ["cooldown.fraction=0.6", "optimizer.lr=0.1"], multirun=False)
    assert "+callbacks.cooldown.steps=6" in args  # 6 of the finished run's 10 steps: 0.6 * 4 / (1 - 0.6)
    assert [a for a in args if a.startswith("optimizer.lr=")] == ["optimizer.lr=0.1"]  # replaces the parent's
    assert f"hydra.run.dir='{run.parent / 'parent_cooldown-1-sqrt-6'}'" in args  # beside the parent
    cfg = compose(*(a for a in args if not a.startswith("hydra.")))
    validate(cfg)
    assert cfg.callbacks.cooldown.steps == 6 and cfg.ckpt_path == str(run / "checkpoints" / f"step={T0}.ckpt")
    assert list(cfg.callbacks)[-1] == "cooldown"  # after lr_schedule, which would otherwise overwrite its LR


def test_the_same_cooldown_resumes_and_another_one_branches_afresh(compose, tmp_path: Path) -> None:
    """A checkpoint written during a cooldown: resumed with the same cooldown it continues that cooldown (a stopped
    branch, a continued sweep); branched with another cooldown it starts a new one from the LR it holds."""
    from lrsched_pl.run import train

    def run(directory: Path, ckpt: Path | None, steps: int) -> list[tuple[int, float]]:
        train(compose(*PARENT, f"ckpt_path={'null' if ckpt is None else repr(str(ckpt))}", "trainer.max_epochs=-1",
                      "trainer.max_steps=-1", f"+callbacks.cooldown._target_={TARGET}",
                      f"+callbacks.cooldown.steps={steps}", "+callbacks.cooldown.shape=1-sqrt",
                      output_dir=directory))  # fmt: skip
        return read_scalars(directory, "lr-SGD")

    parent = tmp_path / "parent"
    train(compose(*PARENT, "trainer.max_steps=4", output_dir=parent))
    first = run(tmp_path / "a", parent / "checkpoints" / f"step={T0}.ckpt", 6)  # steps 4..9, saved at step 8
    assert [t for t, _ in first] == list(range(T0, 10))
    again = run(tmp_path / "resumed", tmp_path / "a" / "checkpoints" / "step=8.ckpt", 6)
    assert again == first[-2:]  # steps 8 and 9 of the same curve, which still ends at step 10
    other = run(tmp_path / "b", tmp_path / "a" / "checkpoints" / "step=8.ckpt", 4)
    lr8 = _expected(8, 6, "1-sqrt", 0.0)  # the LR the checkpoint holds
    assert [t for t, _ in other] == list(range(8, 12))
    assert all(f32_equal(v, lr8 * SHAPES["1-sqrt"]((t - 8) / 4)) for t, v in other), other
