"""Sweep scaling: Hydra's basic launcher against ``hydra/launcher=joblib`` with 2 workers (issue #6, part 4).

    python -m benchmarks.sweep_scaling   # ~8 minutes; writes benchmarks/results/sweep_scaling.md

The sweep is the one a user runs first: ``python train.py -m schedule=constant,step,time_based,exponential,cosine,
plateau``, the default 20-epoch digits run, 6 jobs. Each round runs it once with the basic launcher (one process,
jobs one after the other) and once with ``hydra/launcher=joblib hydra.launcher.n_jobs=2`` (two loky worker
processes), in alternating order, as fresh ``python train.py`` subprocesses; the ratio basic / joblib is taken per
round, then its median. The end-of-sweep report is switched off in both (it is the same work in both and not a job).

The per-job start-up cost comes from the same runs: every job records its own wall time and process in
``<sweep>/results/<n>.yaml``. The first job a process runs also imports Lightning and torch; the difference between
it and the median of that process's later jobs is the one-time process start-up. The default jobs are short
(~1.3 s), so the sweep is also run at 100 epochs to show how the speed-up grows with the job length.
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
LENGTHS = {"20 epochs (the default)": [], "100 epochs": ["trainer.max_epochs=100"]}
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


def start_up(results: list[dict]) -> tuple[list[float], list[float]]:
    """Per process of a sweep: its first job's extra time over its later jobs' median, and those later jobs."""
    extra, later = [], []
    for pid in {r["pid"] for r in results}:
        seconds = [r["seconds"] for r in sorted(results, key=lambda r: r["num"]) if r["pid"] == pid]
        if len(seconds) > 1:
            extra.append(seconds[0] - median(seconds[1:]))
            later += seconds[1:]
    return extra, later


def measure(extra: list[str], where: Path) -> dict:
    """``ROUNDS`` paired rounds of both launchers on the sweep with ``extra`` overrides."""
    out: dict = {"wall": {k: [] for k in LAUNCHERS}, "ratio": [], "start": {k: [] for k in LAUNCHERS},
                 "job": {k: [] for k in LAUNCHERS}}  # fmt: skip
    for round_ in range(ROUNDS):
        order = list(LAUNCHERS)
        random.Random(round_).shuffle(order)
        wall = {}
        for launcher in order:
            wall[launcher], results = run_sweep(launcher, where, extra)
            out["wall"][launcher].append(wall[launcher])
            once, later = start_up(results)
            out["start"][launcher] += once
            out["job"][launcher] += later
        out["ratio"].append(wall["basic"] / wall["joblib"])
        print(f"{extra or 'default'} round {round_ + 1}/{ROUNDS}: basic {wall['basic']:.1f} s, "
              f"joblib {wall['joblib']:.1f} s, speed-up {out['ratio'][-1]:.2f}", flush=True)  # fmt: skip
    return out


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_sweep("basic", Path(tmp), ["trainer.max_epochs=1"])  # warm the file cache before measuring
        data = {name: measure(extra, Path(tmp)) for name, extra in LENGTHS.items()}
    rows, costs, verdicts = [], [], []
    for name, d in data.items():
        speedup = median(d["ratio"])
        lo, hi = quartiles(d["ratio"])
        job, once = median(d["job"]["basic"]), median(d["start"]["basic"])
        ideal = (once + 6 * job) / (once + 3 * job)
        rows.append([name, f"{median(d['wall']['basic']):.1f}", f"{median(d['wall']['joblib']):.1f}",
                     f"{speedup:.2f} ({lo:.2f}-{hi:.2f})", f"{ideal:.2f}", verdict(speedup >= TARGET)])  # fmt: skip
        for launcher in LAUNCHERS:
            costs.append([name, launcher, f"{median(d['start'][launcher]):.2f}", f"{median(d['job'][launcher]):.2f}"])
        verdicts.append(speedup >= TARGET)
    body = f"""
The sweep: `python train.py -m {JOBS}`: 6 digits jobs, at the default 20 epochs and at 100 epochs, the
end-of-sweep report off. {ROUNDS} rounds per length, each running both launchers back to back in a shuffled order,
every sweep a fresh `python train.py -m` process; speed-up = basic wall / joblib wall within a round, median over
rounds (interquartile range). Wall time of this benchmark: {time.perf_counter() - started:.0f} s.

## Wall time of the sweep

{table(["jobs", "basic (s)", "joblib, n_jobs=2 (s)", "speed-up", "bound from the costs below", "target ≥ 1.6"], rows)}

Target: joblib with 2 workers at least {TARGET}x faster than the basic launcher on a 6-job sweep:
{verdict(all(verdicts))} ({", ".join(f"{n}: {'met' if v else 'not met'}" for n, v in zip(LENGTHS, verdicts))}).

## Start-up cost

Every job records its own wall time (`<sweep>/results/<n>.yaml`, with the process that ran it). A process's first
job also imports Lightning and torch (`run.py` is imported on the first job); the start-up is that first job's time
minus the median of the same process's later jobs. The basic launcher has one process, joblib two.

{table(["jobs", "launcher", "process start-up, per process (s)", "a job after the first (s)"], costs)}

The bound: with a start-up S paid once per process and jobs of J seconds, the basic launcher needs S + 6J and two
workers S + 3J (each pays S once, in parallel, and runs 3 jobs): speed-up ≤ (S + 6J) / (S + 3J), lower still for
the Python and Hydra start both pay. joblib's loky workers also run torch on one thread each (2 cores / 2 workers;
`OMP_NUM_THREADS=1`), where the basic launcher's process has two.
"""
    path = write_results("sweep_scaling", "Sweep scaling: basic launcher vs joblib (issue #6, part 4)", body)
    print(path.read_text())


if __name__ == "__main__":
    main()
