"""Sweep scaling: Hydra's basic launcher against ``hydra/launcher=joblib`` with 2 workers (issue #6, part 4).

    python -m benchmarks.sweep_scaling   # ~4 minutes; writes benchmarks/results/sweep_scaling.md

The sweep is the one a user runs first: ``python train.py -m schedule=constant,step,time_based,exponential,cosine,
plateau``, the default 20-epoch digits run, 6 jobs. Each round runs it once with the basic launcher (one process,
jobs one after the other) and once with ``hydra/launcher=joblib hydra.launcher.n_jobs=2`` (two loky worker
processes), in alternating order, as fresh ``python train.py`` subprocesses; the ratio basic / joblib is taken per
round, then its median. The end-of-sweep report is switched off in both (it is the same work in both and not a job).

The per-job start-up cost comes from the same runs: every job records its own wall time in
``<sweep>/results/<n>.yaml``. The first job a process runs also imports Lightning and torch; the difference between
it and the median of that process's later jobs is the one-time process start-up, and a sweep of 6 near-empty jobs
(one batch each) gives the fixed cost of a job (instantiating the model, data, trainer and logger, and fitting).
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks._common import ROOT, median, quartiles, table, verdict, write_results

ROUNDS = 4
JOBS = "schedule=constant,step,time_based,exponential,cosine,plateau"
NO_REPORT = ["hydra.callbacks.sweep_summary.report=false"]
EMPTY_JOB = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1"]
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
TARGET = 1.6


def run_sweep(launcher: str, where: Path, extra: list[str]) -> tuple[float, list[dict]]:
    """Wall time of one sweep (a fresh ``python train.py -m`` process) and its jobs' results."""
    sweep = where / f"{launcher}-{time.monotonic_ns()}"
    cmd = [sys.executable, "train.py", "-m", JOBS, *NO_REPORT, *extra, *LAUNCHERS[launcher], f"hydra.sweep.dir={sweep}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{launcher} sweep failed:\n{proc.stderr[-3000:]}")
    results = [yaml.safe_load(p.read_text()) for p in sorted((sweep / "results").glob("*.yaml"))]
    if len(results) != 6 or any(r["status"] != "completed" for r in results):
        raise RuntimeError(f"{launcher} sweep: expected 6 completed jobs, got {results}")
    return wall, results


def start_up(results: list[dict]) -> tuple[float, float]:
    """(one-time process start-up, median later job) of a basic-launcher sweep, from its jobs' own times."""
    seconds = [r["seconds"] for r in sorted(results, key=lambda r: r["num"])]
    later = median(seconds[1:])
    return seconds[0] - later, later


def main() -> None:
    walls: dict[str, list[float]] = {"basic": [], "joblib": []}
    ratios, first_job_extra, job_seconds, empty_job = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        run_sweep("basic", where, EMPTY_JOB)  # warm the file cache (imports, the digits) before measuring
        for round_ in range(ROUNDS):
            order = list(LAUNCHERS)
            random.Random(round_).shuffle(order)
            wall = {}
            for launcher in order:
                wall[launcher], results = run_sweep(launcher, where, [])
                walls[launcher].append(wall[launcher])
                if launcher == "basic":
                    extra, later = start_up(results)
                    first_job_extra.append(extra)
                    job_seconds.append(later)
            ratios.append(wall["basic"] / wall["joblib"])
            empty = run_sweep("basic", where, EMPTY_JOB)[1]
            empty_job.append(start_up(empty)[1])
            print(f"round {round_ + 1}/{ROUNDS}: basic {wall['basic']:.1f} s, joblib {wall['joblib']:.1f} s, "
                  f"speed-up {ratios[-1]:.2f}", flush=True)  # fmt: skip
    speedup = median(ratios)
    lo, hi = quartiles(ratios)
    rows = [
        ["basic launcher (1 process)", f"{median(walls['basic']):.1f}", "1.00"],
        ["joblib, n_jobs=2 (2 processes)", f"{median(walls['joblib']):.1f}", f"{speedup:.2f} (IQR {lo:.2f}-{hi:.2f})"],
    ]
    costs = [
        ["process start-up (imports Lightning and torch; once per process: 1 basic, 2 joblib)",
         f"{median(first_job_extra):.2f}"],
        ["a near-empty job (1 batch: instantiate model, data, trainer, logger; fit)", f"{median(empty_job):.2f}"],
        ["a default 20-epoch job, after the first", f"{median(job_seconds):.2f}"],
    ]  # fmt: skip
    job, once = median(job_seconds), median(first_job_extra)
    ideal = (once + 6 * job) / (once + 3 * job)
    body = f"""
The sweep: `python train.py -m {JOBS}` (6 default digits jobs, 20 epochs each), the end-of-sweep report off.
{ROUNDS} rounds, each running both launchers back to back in a shuffled order; speed-up = basic wall / joblib
wall within a round, median over rounds.

## Wall time of the sweep

{table(["launcher", "median wall (s)", "speed-up (median of per-round ratios)"], rows)}

**Target: joblib with 2 workers at least {TARGET}x faster than the basic launcher: {verdict(speedup >= TARGET)}**
(median {speedup:.2f}).

## Start-up cost

{table(["cost", "median (s)"], costs)}

With these costs, two workers can at best reach {ideal:.2f}x on 6 jobs: each worker pays the process start-up
once and runs 3 jobs, where the basic launcher pays it once and runs 6. joblib's loky workers also cap torch at
one thread each (2 cores / 2 workers), which the basic launcher's single process does not.
"""
    path = write_results("sweep_scaling", "Sweep scaling: basic launcher vs joblib (issue #6, part 4)", body)
    print(path.read_text())


if __name__ == "__main__":
    main()
