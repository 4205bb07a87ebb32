"""Time to accuracy: does scheduling the LR pay off against a constant LR? (issue #6, part 5)

    python -m benchmarks.time_to_accuracy   # ~15 minutes on 2 cores; writes benchmarks/results/time_to_accuracy.md

Two tasks: the default digits MLP (``data=digits``) and the same with 40% of the training labels random
(``data=digits_noisy``), 20 epochs, SGD with momentum 0.9. Ten configurations: the constant baseline, every schedule
of the core issue (step, time-based per step and per epoch, exponential, cosine, reduce-on-plateau) and the
library's popular ones (warmup + cosine, one-cycle, warmup-stable-decay).

1. **Tune** each configuration once per task on seeds 101 and 102: a grid over the LR (0.1, 0.3, 1.0) and the
   schedule's own knob (below), picked by the mean final validation loss.
2. **Report** the picked configurations on seeds 1-5, which the tuning never saw, with ``lrsched_pl.report``: final
   and best validation loss and accuracy (mean ± std over the 5 seeds), and the epochs each needs to reach the
   constant baseline's best validation loss.

Every job is a real ``python train.py -m`` sweep with ``hydra/launcher=joblib`` (2 workers).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import RESULTS, ROOT, table, write_results
from lrsched_pl.report import Row, write_report

TASKS = {"digits": "the default digits MLP", "digits_noisy": "digits with 40% random training labels"}
LRS = "0.1,0.3,1.0"  # a first grid, 0.03-0.3, picked 0.3 for every configuration: its edge
TUNE_SEEDS = "101,102"
EVAL_SEEDS = "1,2,3,4,5"
# name: (fixed overrides, the grid of the schedule's own knobs)
CONFIGS: dict[str, tuple[list[str], list[str]]] = {
    "constant": (["schedule=constant"], []),
    "step": (["schedule=step"], ["schedule.step_size=5,10", "schedule.gamma=0.5,0.1"]),
    "time_based": (["schedule=time_based"], ["schedule.decay=0.003,0.01,0.03"]),
    "time_based_epoch": (["schedule=time_based_epoch"], ["schedule.decay=0.1,0.25,0.5"]),
    "exponential": (["schedule=exponential"], ["schedule.gamma=0.8,0.9,0.95"]),
    "cosine": (["schedule=cosine"], []),
    "plateau": (["schedule=plateau"], ["schedule.patience=1,2,4"]),
    "warmup_cosine": (["schedule=cosine"], ["schedule.warmup=0.05dur,0.1dur,0.2dur"]),
    "onecycle": (["schedule=onecycle"], ["schedule.pct_start=0.1,0.3,0.5"]),
    "wsd": (["schedule=wsd", "schedule.warmup=0.05dur"], ["schedule.decay=0.1dur,0.2dur,0.4dur"]),
}
COMMON = [
    "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.callbacks.sweep_summary.report=false",
    "~callbacks.model_checkpoint", "hydra.job.config.override_dirname.exclude_keys=[data]",
]  # fmt: skip
WORK = ROOT / "outputs" / "benchmarks" / "time_to_accuracy"


def sweep(overrides: list[str], sweep_dir: Path) -> None:
    """``python train.py -m <overrides>`` into ``sweep_dir``; raises with its stderr if any job failed."""
    cmd = [sys.executable, "train.py", "-m", *overrides, *COMMON, f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"sweep {overrides} failed:\n{proc.stderr[-3000:]}")


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def tune(task: str, name: str) -> tuple[list[str], float]:
    """The overrides (without seed) of the best grid point on the tuning seeds, and its mean final val/loss."""
    fixed, grid = CONFIGS[name]
    where = WORK / "tune" / task / name
    if not (where / "multirun.yaml").is_file():
        sweep([f"data={task}", *fixed, f"optimizer.lr={LRS}", *grid, f"seed={TUNE_SEEDS}"], where)
    rows = write_report(where, console=False).rows
    best = min(rows, key=lambda row: _finite(row.final["val/loss"].mean))  # a diverged LR gives nan
    tuned = {"optimizer.lr", *(knob.split("=")[0] for knob in grid)}
    picked = [o for o in best.label.split(",") if o.split("=")[0] in tuned]
    return [*fixed, *picked], best.final["val/loss"].mean


def main() -> None:
    reuse = "--reuse" in sys.argv[1:]  # keep finished evaluation sweeps: only redo the tables and figures
    started = time.perf_counter()
    sections = []
    for task, description in TASKS.items():
        picked = {name: tune(task, name) for name in CONFIGS}
        evaluation = WORK / "eval" / task
        if not (reuse and evaluation.is_dir()):
            shutil.rmtree(evaluation, ignore_errors=True)  # the tuning sweeps are kept and reused by a re-run
            for overrides, _ in picked.values():
                sweep([f"data={task}", *overrides, f"seed={EVAL_SEEDS}"], evaluation)
        out = RESULTS / "time_to_accuracy" / task
        shutil.rmtree(out, ignore_errors=True)
        report = write_report(evaluation, out_dir=out, console=False)
        sections.append(section(task, description, picked, report.rows, out))
        print(f"{task}: done after {time.perf_counter() - started:.0f} s", flush=True)
    body = "\n\n".join([__doc__.split("\n\n", 1)[1].strip(), *sections])
    path = write_results("time_to_accuracy", "Time to accuracy: schedules against a constant LR (issue #6, part 5)", body)
    print(path.read_text())


def verdicts(rows: list[Row]) -> list[str]:
    """One line per configuration: does its final val/loss differ from the constant baseline's over the seeds?

    Welch's t-test on the per-seed final values (scipy), two-sided, at p < 0.05.
    """
    from scipy.stats import ttest_ind

    base = next((r for r in rows if r.label == r.baseline), None)
    if base is None:
        return ["No constant baseline in this sweep."]
    finals = {id(r): [run.curves["val/loss"][-1][1] for run in r.runs] for r in rows}
    b = base.final["val/loss"]
    lines = []
    for row in (r for r in rows if r is not base):
        s = row.final["val/loss"]
        p = float(ttest_ind(finals[id(row)], finals[id(base)], equal_var=False).pvalue)
        word = "beats" if s.mean < b.mean else "is worse than"
        word = word if p < 0.05 else "does not beat" if s.mean < b.mean else "is not worse than"
        reach = "never reaches" if row.epochs_to_baseline is None else f"reaches in {row.epochs_to_baseline} epochs"
        lines.append(f"- `{row.short or row.label}` {word} the baseline on final val/loss: {s.mean:.4f} ± "
                     f"{s.std:.4f} vs {b.mean:.4f} ± {b.std:.4f} (Welch p = {p:.3f}); {reach} the baseline's best "
                     f"(epoch {base.epochs_to_baseline} for the baseline itself).")  # fmt: skip
    return lines


def section(task: str, description: str, picked: dict, rows: list[Row], out: Path) -> str:
    tuned = table(["configuration", "picked on seeds 101, 102", "tuning final val/loss (mean)"],
                  [[name, f"`{' '.join(o)}`", f"{score:.4f}"] for name, (o, score) in picked.items()])  # fmt: skip
    report = (out / "report.md").read_text().split("\n", 1)[1].split("## Figures")[0].strip()  # its table, notes
    rel = out.relative_to(RESULTS)
    return f"""## {task}: {description}

### Tuning

{tuned}

### Seeds 1-5

{report}

![validation loss]({rel}/val_loss.png)
![final validation loss]({rel}/final_metric.png)

### Verdict

{chr(10).join(verdicts(rows))}"""


if __name__ == "__main__":
    main()
