"""Time to target: AlgoPerf's protocol, scaled down, for learning-rate schedules (issue #14)

    python -m benchmarks.time_to_target           # the full budget (<= 45 min on 2 cores) -> benchmarks/results/
    python -m benchmarks.time_to_target --quick   # fewer trials, one study, runs a quarter as long (<= 5 min)

**Protocol** (MLCommons AlgoPerf's external tuning, scaled down to 2 CPU cores). Every schedule arm gets the same
tuning budget on every workload: ``N`` quasi-random trials (a scrambled Halton sequence) over the peak LR,
log-uniform in the workload's range, and at most one knob of the schedule; the same ``N`` points in every arm of a
study. ``K`` independent studies (other points, another training seed each). The **target** of a workload is the
constant arm's median (over the studies) best validation metric, fixed once and written below. In each study an
arm's fastest trial to reach the target (fewest optimizer steps) is re-run on a **held-out seed** the tuning never
saw, and its steps and seconds to the target there are the study's score (infinite when it misses the target, or
when no trial of the study reached it). An arm's **score** is the median over the studies. **Performance profiles**
(``lrsched_pl.profiles``) summarize the scores across workloads: the share of workloads on which an arm is within a
factor τ of the fastest arm, τ from 1 to 4; they are computed on steps, which the shared machine does not distort.

Every trial is a job of a real ``python train.py -m`` sweep (``hydra/launcher=joblib``, 2 workers), selected with
``+trial=<name>`` from a config group this script writes (one YAML file per trial). Curves are read back from the
jobs' TensorBoard event files, the finished jobs from the ``results/*.yaml`` each sweep writes. Interrupted? Run it
again: finished trials are kept on disk and only the missing ones are launched.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, ROOT, machine, table

WORK_ROOT = ROOT / "outputs" / "benchmarks"
EXTRA: list[str] = []  # overrides of every run set from the command line (the accelerator)
COMMON = [
    "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.callbacks.sweep_summary.report=false",
    "~callbacks.model_checkpoint", "trainer.log_every_n_steps=10",
    # CPU time a job spends on neither training nor validating; a run is the same without them (its curves too)
    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "trainer.num_sanity_val_steps=0",
    "trainer.enable_checkpointing=false",  # Lightning's default ModelCheckpoint would save (and fsync) every epoch
]  # fmt: skip


@dataclass(frozen=True)
class Workload:
    """One task: its overrides, run length, the metric of its target and the peak-LR range searched."""

    description: str
    overrides: Callable[[float], list[str]]  # the run length's scale -> the overrides of a run
    steps: Callable[[float], int]  # the run length's scale -> optimizer steps per run
    metric: str
    mode: str  # max: higher is better
    lr: tuple[float, float]


def _digits(data: str) -> Workload:
    epochs = lambda scale: max(1, round(20 * scale))  # noqa: E731 - 23 steps per epoch (1,437 samples, batch 64)
    return Workload(
        f"`data={data}`: the default MLP on sklearn's digits{' with 40% random training labels' * (data != 'digits')}"
        ", SGD (momentum 0.9), 20 epochs of 23 steps, validated every epoch",
        lambda s: [f"data={data}", "optimizer=sgd", f"trainer.max_epochs={epochs(s)}"],
        lambda s: 23 * epochs(s), "val/acc", "max", (0.03, 3.0),
    )  # fmt: skip


def _lm_steps(scale: float) -> int:
    return max(40, round(320 * scale / 40) * 40)


WORKLOADS: dict[str, Workload] = {
    "digits": _digits("digits"),
    "digits_noisy": _digits("digits_noisy"),
    "mnist1d_cnn": Workload(
        "`data=mnist1d model=cnn1d`: the MNIST-1D paper's CNN, Adam, batch 100, 1,000 steps (25 epochs), validated"
        " every epoch on the test split",
        lambda s: ["data=mnist1d", "model=cnn1d", "optimizer=adam", f"trainer.max_steps={max(40, round(1000 * s))}",
                   "trainer.max_epochs=-1"],
        lambda s: max(40, round(1000 * s)), "val/acc", "max", (1e-3, 1e-1),
    ),  # fmt: skip
    "lm": Workload(
        "`data=pydoc_topics model=transformer_lm`: a 2-layer causal transformer (d=64, 4 heads) on bytes of the "
        "Python reference manual, AdamW, batch 32 x 32 tokens (`data.block_size=32`), 320 steps, validated every "
        "40 steps on the first 512 held-out sequences (16,384 bytes, `trainer.limit_val_batches=2`)",
        lambda s: ["data=pydoc_topics", "model=transformer_lm", "optimizer=adamw", "data.block_size=32",
                   f"trainer.max_steps={_lm_steps(s) + 1}",  # +1: Lightning skips the check at the last step
                   # every k optimizer steps across epochs (an epoch is 410 steps): the last check is at the end
                   f"trainer.val_check_interval={_lm_steps(s) // 8}", "trainer.check_val_every_n_epoch=null",
                   "trainer.limit_val_batches=2"],
        _lm_steps, "val/loss", "min", (1e-3, 1e-1),  # a first range, 3e-4 - 3e-2, had its best at its top point
    ),  # fmt: skip
}


@dataclass(frozen=True)
class Arm:
    """A schedule option, its fixed keys and at most one knob ``(key, unit sample, workload steps) -> value``."""

    schedule: str
    fixed: dict[str, Any] = field(default_factory=dict)
    knob: tuple[str, Callable[[float, int], Any], str] | None = None  # key, value of u in [0, 1), its range


def _log_uniform(u: float, low: float, high: float) -> float:
    return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))


ARMS: dict[str, Arm] = {
    "constant": Arm("constant"),
    "step": Arm("step", {"interval": "step", "step_size": "third"},
                ("gamma", lambda u, n: round(_log_uniform(u, 0.05, 0.5), 4), "log-uniform in [0.05, 0.5]")),
    "exponential": Arm("exponential", {"interval": "step"},
                       ("gamma", lambda u, n: _log_uniform(u, 1e-3, 0.3) ** (1 / n),
                        "the final factor gamma^steps log-uniform in [1e-3, 0.3]")),
    "cosine": Arm("cosine"),
    "warmup_cosine": Arm("cosine", {}, ("warmup", lambda u, n: f"{0.02 + 0.23 * u:.3f}dur",
                                        "uniform in [0.02, 0.25] of the run")),
    "linear": Arm("linear", {"end_factor": 0.0}),
    "wsd": Arm("wsd", {"decay_type": "1-sqrt", "warmup": "0.05dur"},
               ("decay", lambda u, n: f"{0.1 + 0.4 * u:.3f}dur", "uniform in [0.1, 0.5] of the run")),
    "onecycle": Arm("onecycle", {}, ("pct_start", lambda u, n: round(0.1 + 0.4 * u, 3), "uniform in [0.1, 0.5]")),
    "plateau": Arm("plateau", {"interval": "step", "factor": 0.5},
                   ("patience", lambda u, n: min(4, int(5 * u)), "an int uniform in 0..4 validations")),
}  # fmt: skip
ARM_TEXT = {"step": "step_size a third of the run", "linear": "linear to zero (`schedule=linear`, end_factor 0)",
            "wsd": "1-sqrt cooldown, warmup 5%", "plateau": "on val/loss, factor 0.5",
            "exponential": "per step"}  # fmt: skip


@dataclass(frozen=True)
class Budget:
    trials: int
    studies: int
    scale: float  # run length relative to the full one
    name: str
    minutes: float | None = None  # what it may take on 2 CPU cores (issue #14), if anything is promised


BUDGETS = {"full": Budget(3, 3, 1.0, "full", 45), "quick": Budget(2, 1, 0.25, "quick", 5),
           "tiny": Budget(1, 1, 0.1, "tiny")}  # fmt: skip


REDUCED: dict[str, int] = {}  # workload -> studies, when fewer than the budget's were run (--studies lm=1)


def studies(budget: Budget, workload: str) -> int:
    """The studies run for ``workload``: the budget's, or fewer where ``--studies`` reduced them."""
    return min(budget.studies, REDUCED.get(workload, budget.studies))


def tuning_seed(study: int) -> int:
    return 101 + study


def heldout_seed(study: int) -> int:
    return 1001 + study


# ---------------------------------------------------------------------------------------------- trials as configs
def points(study: int, n: int) -> list[tuple[float, float]]:
    """``n`` scrambled-Halton points in ``[0, 1)^2`` (peak LR, knob), the same for every arm of a study."""
    from scipy.stats import qmc

    return [tuple(map(float, p)) for p in qmc.Halton(d=2, scramble=True, seed=study).random(n)]


def trial_config(workload: Workload, arm: Arm, u: tuple[float, float], seed: int, steps: int) -> dict[str, Any]:
    """The overrides of one trial: the arm's schedule, the LR and knob drawn from ``u``, the seed."""
    schedule = {k: (max(1, steps // 3) if v == "third" else v) for k, v in arm.fixed.items()}
    if arm.knob is not None:
        key, value, _ = arm.knob
        schedule[key] = value(u[1], steps)
    return {"defaults": [{"override /schedule": arm.schedule}], "seed": seed,
            "optimizer": {"lr": float(f"{_log_uniform(u[0], *workload.lr):.4g}")}, "schedule": schedule}  # fmt: skip


def write_trial(config_dir: Path, name: str, config: dict[str, Any]) -> None:
    """``<config_dir>/trial/<name>.yaml``, a ``# @package _global_`` option for ``+trial=<name>``."""
    import yaml

    path = config_dir / "trial" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# @package _global_\n" + yaml.safe_dump(config, sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


# ---------------------------------------------------------------------------------------------- sweeps and results
def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children and everything they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep(overrides: list[str], sweep_dir: Path, extra: list[str] | None = None) -> None:
    """``python train.py -m <overrides>`` into ``sweep_dir``; a failed job is reported, its result kept as failed.

    What the sweep cost goes into ``<sweep_dir>/../../../spent.json`` (the budget's work folder, kept across
    resumed invocations): its wall seconds, the CPU seconds of its process tree (the launcher and its joblib
    workers, which it reaps) and the machine's 1-minute load average every 15 s while it ran. CPU seconds are what
    other users of a shared machine do not inflate; wall seconds are what they do.
    """
    cmd = [sys.executable, "train.py", "-m", *overrides, *COMMON, *(extra or []), f"hydra.sweep.dir={sweep_dir}"]
    cpu, wall, loads = _children_cpu(), time.perf_counter(), []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        try:
            stderr = proc.communicate(timeout=15)[1]  # retried after a timeout without losing output (Popen docs)
            break
        except subprocess.TimeoutExpired:
            loads.append(os.getloadavg()[0])
    record_spent(sweep_dir, time.perf_counter() - wall, _children_cpu() - cpu, [*loads, os.getloadavg()[0]])
    if proc.returncode != 0:
        print(f"sweep into {sweep_dir} had failures:\n{stderr[-2000:]}", file=sys.stderr, flush=True)


def record_spent(sweep_dir: Path, wall: float, cpu: float, loads: list[float]) -> None:
    """Adds one sweep's wall and CPU seconds and the load averages sampled to ``spent.json`` of its work folder."""
    path = sweep_dir.parents[2] / "spent.json"  # <work>/<budget>/<workload>/<tune|heldout>/part<k>
    spent = json.loads(path.read_text()) if path.is_file() else {}
    spent[str(sweep_dir.relative_to(path.parent))] = {
        "wall": round(wall, 1), "cpu": round(cpu, 1), "loads": [round(x, 2) for x in loads], "ended": time.time()}
    path.write_text(json.dumps(spent, indent=1))


def completed_jobs(base: Path, status: tuple[str, ...] = ("completed",)) -> list[dict[str, Any]]:
    """The results (``results/*.yaml``) of the jobs under ``base`` (its sweep and resumed parts) with ``status``."""
    from lrsched_pl.jobs import read_records

    dirs = sorted({p.parent.parent for p in base.glob("**/results/*.yaml")}) if base.is_dir() else []
    return [r for d in dirs for r in read_records(d) if r.get("status") in status]


def _trial_of(result: dict[str, Any]) -> str:
    return next(o.split("=", 1)[1] for o in result["overrides"] if o.startswith("+trial="))


def run_trials(workload: Workload, scale: float, names: list[str], base: Path, config_dir: Path,
               extra: tuple[str, ...] = ()) -> dict[str, str]:  # fmt: skip
    """Runs the trials that have no result under ``base`` yet (one sweep, a new ``part<k>``); ``{trial: job dir}``."""
    done = {_trial_of(r): r for r in completed_jobs(base, ("completed", "failed"))}
    if missing := [n for n in names if n not in done]:
        part = base / f"part{len(list(base.glob('part*')))}"
        keys = [o.split("=", 1)[0] for o in workload.overrides(scale)]
        sweep([*workload.overrides(scale), *extra, f"+trial={','.join(missing)}"], part,
              [f"hydra.searchpath=[file://{config_dir}]",
               f"hydra.job.config.override_dirname.exclude_keys=[{','.join(keys)}]"])  # fmt: skip
        done = {_trial_of(r): r for r in completed_jobs(base, ("completed", "failed"))}
    return {n: done[n]["dir"] for n in names if n in done and done[n]["status"] == "completed"}


def read_curve(job_dir: str | Path, tag: str) -> list[tuple[int, float, float]]:
    """``(optimizer steps done, seconds since the run's first event, value)`` per validation, from the event files."""
    import logging

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    acc = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return []
    start = acc.FirstEventTimestamp()
    return [(e.step + 1, e.wall_time - start, e.value) for e in acc.Scalars(tag)]  # step: global_step - 1 at logging


def _better(mode: str, a: float, b: float) -> bool:
    return a >= b if mode == "max" else a <= b


def time_to(curve: list[tuple[int, float, float]], target: float, mode: str) -> tuple[float, float]:
    """``(steps, seconds)`` at the first validation that reaches ``target``; ``(inf, inf)`` if none does."""
    return next(((s, t) for s, t, v in curve if math.isfinite(v) and _better(mode, v, target)), (math.inf, math.inf))


def best_value(curve: list[tuple[int, float, float]], mode: str) -> float:
    values = [v for _, _, v in curve if math.isfinite(v)]
    if not values:
        return -math.inf if mode == "max" else math.inf
    return max(values) if mode == "max" else min(values)


# ---------------------------------------------------------------------------------------------- the protocol
@dataclass
class StudyScore:
    """One arm in one study: the picked trial, its tuning steps, and its held-out steps and seconds to the target."""

    trial: str | None
    tuning_steps: float
    steps: float
    seconds: float


def _names(arm: str, study: int, trials: int) -> list[str]:
    return [f"{arm}_s{study}_t{i}" for i in range(trials)]


def tune(name: str, budget: Budget, arms: list[str], work: Path) -> dict[str, str]:
    """Writes every trial's config and runs the missing ones: ``{trial: job dir}`` of the finished ones."""
    workload, config_dir = WORKLOADS[name], work / name / "configs"
    steps = workload.steps(budget.scale)
    names = []
    for study in range(studies(budget, name)):
        for arm in arms:
            for trial, u in zip(_names(arm, study, budget.trials), points(study, budget.trials)):
                write_trial(config_dir, trial, trial_config(workload, ARMS[arm], u, tuning_seed(study), steps))
                names.append(trial)
    return run_trials(workload, budget.scale, names, work / name / "tune", config_dir, tuple(EXTRA))


def best_reached(name: str, budget: Budget, arms: list[str], dirs: dict[str, str]) -> dict[str, float]:
    """Per arm, the median over studies of its best tuning trial's best validation metric (how far each arm gets)."""
    mode, metric = WORKLOADS[name].mode, WORKLOADS[name].metric
    pick = max if mode == "max" else min
    out = {}
    for arm in arms:
        per_study = [pick(values) for study in range(studies(budget, name))
                     if (values := [best_value(read_curve(dirs[t], metric), mode)
                                    for t in _names(arm, study, budget.trials) if t in dirs])]  # fmt: skip
        out[arm] = statistics.median(per_study) if per_study else math.nan
    return out


def fix_target(name: str, budget: Budget, dirs: dict[str, str], work: Path) -> float:
    """The constant arm's median over studies of its best trial's best metric; kept in ``targets.json`` once set.

    A target computed from fewer studies than the budget's (``--studies``) is used but not kept.
    """
    path = work / "targets.json"
    targets = json.loads(path.read_text()) if path.is_file() else {}
    if name not in targets:
        mode, metric = WORKLOADS[name].mode, WORKLOADS[name].metric
        bests = []
        for study in range(studies(budget, name)):
            values = [best_value(read_curve(dirs[t], metric), mode) for t in _names("constant", study, budget.trials)
                      if t in dirs]  # fmt: skip
            if values:
                bests.append(max(values) if mode == "max" else min(values))
        if not bests:
            raise RuntimeError(f"{name}: no finished constant trial to set the target from")
        if studies(budget, name) < budget.studies:  # a reduced run: used now, not fixed for the next
            return statistics.median(bests)
        targets[name] = statistics.median(bests)
        path.write_text(json.dumps(targets, indent=1))
    return float(targets[name])


def score(name: str, budget: Budget, arms: list[str], work: Path, target: float,
          dirs: dict[str, str]) -> dict[str, list[StudyScore]]:  # fmt: skip
    """Each arm's :class:`StudyScore` per study: its fastest tuning trial re-run on the held-out seed."""
    workload, config_dir = WORKLOADS[name], work / name / "configs"
    metric, mode = workload.metric, workload.mode
    picked: dict[tuple[str, int], tuple[str, float] | None] = {}
    for arm in arms:
        for study in range(studies(budget, name)):
            reach = [(time_to(read_curve(dirs[t], metric), target, mode), t)
                     for t in _names(arm, study, budget.trials) if t in dirs]  # fmt: skip
            reach = [(steps_seconds, t) for steps_seconds, t in reach if math.isfinite(steps_seconds[0])]
            picked[arm, study] = (min(reach)[1], min(reach)[0][0]) if reach else None
    heldout = []
    for (arm, study), pick in picked.items():
        if pick is not None:
            config = json.loads(json.dumps(_load_trial(config_dir, pick[0])))
            config["seed"] = heldout_seed(study)
            write_trial(config_dir, f"{pick[0]}_heldout", config)
            heldout.append(f"{pick[0]}_heldout")
    final = run_trials(workload, budget.scale, heldout, work / name / "heldout", config_dir, tuple(EXTRA))
    scores: dict[str, list[StudyScore]] = {}
    for (arm, study), pick in picked.items():
        if pick is None:
            study_score = StudyScore(None, math.inf, math.inf, math.inf)
        else:
            job = final.get(f"{pick[0]}_heldout")
            steps, seconds = time_to(read_curve(job, metric), target, mode) if job else (math.inf, math.inf)
            study_score = StudyScore(pick[0], pick[1], steps, seconds)
        scores.setdefault(arm, []).append(study_score)
    return scores


def _load_trial(config_dir: Path, name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((config_dir / "trial" / f"{name}.yaml").read_text())


def median_score(studies: list[StudyScore], attr: str = "steps") -> float:
    """The median over the studies (an infinite one sorts last)."""
    return statistics.median(getattr(s, attr) for s in studies)


# ---------------------------------------------------------------------------------------------- the results file
def _cell(value: float, digits: int = 0) -> str:
    return "∞" if not math.isfinite(value) else f"{value:.{digits}f}"


def _verdicts(results: dict[str, dict[str, list[StudyScore]]]) -> list[str]:
    lines = []
    for name, arms in results.items():
        medians = {arm: median_score(s) for arm, s in arms.items()}
        best = min(medians.values())
        if not math.isfinite(best):
            lines.append(f"- **{name}**: no arm reached the target on the held-out seeds in most studies.")
            continue
        fastest = sorted(a for a, v in medians.items() if v == best)
        base = medians.get("constant", math.inf)
        vs = f"{base / best:.2f}× fewer steps than the constant LR" if math.isfinite(base) else (
            "the constant LR itself missed its target on the held-out seeds")
        missed = sorted(a for a, v in medians.items() if not math.isfinite(v))
        lines.append(f"- **{name}**: fastest {', '.join(f'`{a}`' for a in fastest)} ({_cell(best)} steps; {vs})"
                     + (f"; missed the target: {', '.join(f'`{a}`' for a in missed)}" if missed else "") + ".")
    return lines


def _corpus_line() -> str:
    from lrsched_pl.text_data import corpus_info

    info = corpus_info()
    return (f"The LM's corpus: `pydoc_data.topics` of Python {info['python']}, {info['chars']:,} characters, "
            f"{info['bytes']:,} bytes, SHA-256 `{info['sha256'][:16]}…`.")


def _spent(work: Path, workloads: list[str], limit: float | None = None) -> str:
    """What the benchmark cost, over all its invocations: jobs, CPU and wall time, per workload, and the load.

    CPU minutes are the user + system time of the sweeps' process trees (``spent.json``); divided by the 2 workers
    they are what the run would take on an otherwise idle 2-core machine with both workers busy, whatever else ran
    on this one. A sweep whose invocation was killed has no record: its finished jobs are counted at the workload's
    CPU per job in the recorded sweeps, and said so. Job minutes (the jobs' own wall seconds, summed) and the wall
    time are what it took here.
    """
    path = work / "spent.json"
    spent = json.loads(path.read_text()) if path.is_file() else {}
    spent = {k: v for k, v in spent.items() if k.split("/", 1)[0] in workloads}
    cpu, estimated = {}, 0
    for w in workloads:
        jobs = {str(d.relative_to(work)): len(completed_jobs(d)) for d in sorted((work / w).glob("*/part*"))}
        recorded = [k for k in jobs if k in spent]
        rate = sum(spent[k]["cpu"] for k in recorded) / max(1, sum(jobs[k] for k in recorded))
        unrecorded = sum(n for k, n in jobs.items() if k not in spent)
        estimated += unrecorded
        cpu[w] = (sum(spent[k]["cpu"] for k in recorded) + rate * unrecorded) / 60
    results = [p for w in workloads for p in (work / w).glob("**/results/*.yaml")]
    starts = [p.stat().st_mtime for w in workloads for p in (work / w).glob("**/multirun.yaml")]
    job_seconds = sum(float(r.get("seconds") or 0) for w in workloads for r in completed_jobs(work / w))
    span = max(p.stat().st_mtime for p in results) - min(starts) if results and starts else math.nan
    total, wall = sum(cpu.values()), sum(v["wall"] for v in spent.values()) / 60
    loads = sorted(x for v in spent.values() for x in v.get("loads", [v.get("load")]) if x is not None)
    load = (f"the 1-minute load average, sampled every 15 s while the sweeps ran and at each one's end "
            f"({len(loads)} samples), was {loads[0]:.1f}–{loads[-1]:.1f} (median {statistics.median(loads):.1f}) on "
            f"{os.cpu_count()} cores, that is about that many processes wanting a core, our 2 workers among them"
            if loads else
            "no load recorded")  # fmt: skip
    note = (f"; {estimated} jobs of sweeps whose invocation was killed are counted at their workload's CPU per job"
            if estimated else "")
    return (f"**Cost** (every invocation, `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}`): "
            f"{len(results)} jobs in {len({p.parent.parent for p in results})} sweeps; "
            f"**{total:.1f} CPU-minutes** (user + system of the sweeps' processes, their joblib workers included: "
            f"{', '.join(f'{w} {m:.1f}' for w, m in cpu.items())}{note}), so **{total / 2:.1f} minutes** of wall "
            f"time for 2 workers kept busy on 2 otherwise idle cores. Here it took {wall:.1f} minutes of wall time "
            f"inside the sweeps ({span / 60:.1f} from the first sweep's start to the last job's end, pauses between "
            f"invocations included) and {job_seconds / 60:.0f} job-minutes (the jobs' own wall seconds, summed), "
            f"because the machine was shared: {load}." + _verdict(limit, total / 2, span / 60))


def _verdict(limit: float | None, idle: float, here: float) -> str:
    """Whether the run fits its budget of ``limit`` minutes on 2 cores, by the CPU measure and by the wall time."""
    if limit is None or not math.isfinite(here):
        return ""
    wall = "and by the wall time here" if here <= limit else "but not by the wall time here, inflated by the load"
    verdict = f"**met** by the CPU measure ({idle:.1f} minutes) {wall} ({here:.1f} minutes)" if idle <= limit else (
        f"**not met**: {idle:.1f} minutes by the CPU measure, {here:.1f} by the wall time here")
    return f" Budget of {limit:g} minutes on 2 CPU cores: {verdict}."


def _mnist1d_table(out: Path) -> str:
    """The MNIST-1D paper's constant-LR table beside ours, quoted from ``mnist1d_table.md`` when it is in ``out``."""
    path = out / "mnist1d_table.md"
    if not path.is_file():
        return ""
    lines = path.read_text().splitlines()
    rows = [line for line in lines if line.startswith("|")]
    reading = next((line for line in lines if line.startswith("**Reading.**")), "")
    return "\n\n".join([
        "## MNIST-1D: the paper's constant-LR table reproduced",
        f"Quoted from [`{path.name}`]({path.name}) (`python -m benchmarks.mnist1d_table`: Adam at a constant 1e-2, "
        "batch 100, 8,000 steps, 3 seeds, as the paper): the check that the data and the CNN of the `mnist1d_cnn` "
        "workload are the paper's.",
        "\n".join(rows), reading])  # fmt: skip


def write(budget: Budget, workloads: list[str], arms: list[str], targets: dict[str, float],
          results: dict[str, dict[str, list[StudyScore]]], bests: dict[str, dict[str, float]], out: Path,
          seconds: float, work: Path) -> Path:  # fmt: skip
    """The Markdown results file, the profile figure and ``scores.json`` into ``out``."""
    from lrsched_pl.profiles import plot_profiles, profiles

    stem = "time_to_target" if budget.name == "full" else f"time_to_target_{budget.name}"
    fig_dir = out / stem
    steps = {arm: {w: median_score(results[w][arm]) for w in workloads} for arm in arms}
    figure = plot_profiles(steps, fig_dir / "profiles.png",
                           title=f"Performance profiles: steps to target ({len(workloads)} workloads)")
    if (work / "spent.json").is_file():  # the cost per sweep, beside the scores
        (fig_dir / "spent.json").write_text((work / "spent.json").read_text())
    (fig_dir / "scores.json").write_text(json.dumps(
        {w: {a: [s.__dict__ for s in results[w][a]] for a in arms} for w in workloads}, indent=1, default=str))
    rho = profiles(steps, [1.0, 1.5, 2.0, 4.0])
    budget_text = (f"**Budget used: `{budget.name}`**: {budget.trials} trials × {budget.studies} studies per arm and "
                   f"workload, runs at {budget.scale:g}× the full length; {len(arms)} arms, {len(workloads)} "
                   f"workloads; tuning seeds {', '.join(str(tuning_seed(k)) for k in range(budget.studies))}, "
                   f"held-out seeds {', '.join(str(heldout_seed(k)) for k in range(budget.studies))}; "
                   f"`{' '.join(EXTRA) or 'trainer.accelerator=cpu'}`; {seconds / 60:.1f} minutes for this "
                   "invocation (finished trials of earlier ones reused).")
    reduced = [f"`{w}` ran {studies(budget, w)} of the {budget.studies} studies" for w in workloads
               if studies(budget, w) < budget.studies]  # fmt: skip
    if reduced:
        budget_text += (f" **Reduced:** {'; '.join(reduced)} (`--studies`), for lack of time on the shared machine; "
                        "its score is that of its studies, its target the constant arm's best in them.")
    wl_table = table(["workload", "what", "metric (target)", "target", "peak LR range"],
                     [[w, WORKLOADS[w].description, f"{WORKLOADS[w].metric} ({WORKLOADS[w].mode})",
                       f"{targets[w]:.4f}", f"{WORKLOADS[w].lr[0]:g} – {WORKLOADS[w].lr[1]:g}"] for w in workloads])
    arm_table = table(["arm", "schedule", "fixed", "knob"],
                      [[a, f"`schedule={ARMS[a].schedule}`", ARM_TEXT.get(a, "—"),
                        f"`{ARMS[a].knob[0]}` {ARMS[a].knob[2]}" if ARMS[a].knob else "none (LR only)"] for a in arms])
    reached = lambda w, a: sum(math.isfinite(s.steps) for s in results[w][a])  # noqa: E731
    steps_table = table(["arm", *workloads, "ρ(1)", "ρ(1.5)", "ρ(2)", "ρ(4)"],
                        [[a, *(f"{_cell(steps[a][w])} ({reached(w, a)}/{studies(budget, w)})" for w in workloads),
                          *(f"{v:.2f}" for v in rho[a])] for a in arms])
    secs_table = table(["arm", *workloads],
                       [[a, *(_cell(median_score(results[w][a], "seconds"), 1) for w in workloads)] for a in arms])
    usage, protocol = __doc__.split("\n\n", 2)[1:]
    body = "\n\n".join(part for part in [
        f"```bash\n{textwrap.dedent(usage).strip()}\n```", protocol.strip(), budget_text,
        _spent(work, workloads, budget.minutes),
        "## Workloads (targets fixed once)", wl_table,
        _corpus_line() if "lm" in workloads else "", "## Arms", arm_table,
        "## Scores: median steps to the target on the held-out seeds (studies that reached it)",
        "ρ(τ): the share of workloads on which the arm is within τ× of the fastest arm (the performance profile).",
        steps_table, f"![performance profiles]({figure.relative_to(out)})", "## The same in seconds (median)",
        "Seconds from the run's first event, two jobs at a time on a shared 2-core machine: noisy; read the steps.",
        secs_table, "## How far each arm gets: the best validation metric in tuning",
        "Median over the studies of the arm's best trial's best value (the target in the last row): an arm that misses "
        "the target by a hair and one that is far off both score ∞ above.",
        table(["arm", *workloads], [[a, *(f"{bests[w][a]:.4f}" for w in workloads)] for a in arms]
              + [["target", *(f"{targets[w]:.4f}" for w in workloads)]]),
        "## Reading", "\n".join(_verdicts({w: results[w] for w in workloads})),
        f"Per-study picks and scores: `{(fig_dir / 'scores.json').relative_to(out)}`.",
        _mnist1d_table(out) if "mnist1d_cnn" in workloads else "",
    ] if part)  # fmt: skip
    path = out / f"{stem}.md"
    suffix = "" if budget.name == "full" else f", {budget.name}"
    title = f"Time to target: schedules under AlgoPerf's protocol (issue #14{suffix})"
    rerun = f"Re-run: `python -m benchmarks.time_to_target{' --' + budget.name if budget.name != 'full' else ''}`."
    path.write_text(f"# {title}\n\n{rerun}\n\n{machine()}\n\n{body.strip()}\n")
    return path


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="2 trials, 1 study, runs a quarter as long (<= 5 min)")
    group.add_argument("--tiny", action="store_true", help="for the tests: 1 trial, 1 study, runs 10%% as long")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated, of: " + ", ".join(WORKLOADS))
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated, of: " + ", ".join(ARMS))
    parser.add_argument("--work", type=Path, default=None, help="where the sweeps go (default: outputs/benchmarks/)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results file and figure go")
    parser.add_argument("--studies", action="append", default=[], metavar="WORKLOAD=K",
                        help="run only the first K studies of WORKLOAD (a reduced budget, stated in the results)")
    parser.add_argument("--accelerator", default="cpu", help="trainer.accelerator of every run (cpu, gpu)")
    args = parser.parse_args(argv)
    budget = BUDGETS["quick" if args.quick else "tiny" if args.tiny else "full"]
    workloads, arms = args.workloads.split(","), args.arms.split(",")
    for kind, given, known in (("workload", workloads, WORKLOADS), ("arm", arms, ARMS)):
        if unknown := [x for x in given if x not in known]:
            parser.error(f"unknown {kind} {unknown}; known: {', '.join(known)}")
    for item in args.studies:
        workload, _, k = item.partition("=")
        if workload not in WORKLOADS or not k.isdigit() or int(k) < 1:
            parser.error(f"--studies takes WORKLOAD=K with K >= 1 and a known workload, got {item!r}")
        REDUCED[workload] = int(k)
    if "constant" not in arms:
        parser.error("the arms must include `constant`: it sets the targets")
    work = (args.work or WORK_ROOT / "time_to_target") / (budget.name + ("" if args.accelerator == "cpu" else
                                                                       f"_{args.accelerator}"))
    EXTRA[:] = [f"trainer.accelerator={args.accelerator}"]
    started = time.perf_counter()
    targets, results, bests = {}, {}, {}
    for name in workloads:
        dirs = tune(name, budget, arms, work)
        targets[name] = fix_target(name, budget, dirs, work)
        results[name] = score(name, budget, arms, work, targets[name], dirs)
        bests[name] = best_reached(name, budget, arms, dirs)
        print(f"{name}: target {targets[name]:.4f}, done after {time.perf_counter() - started:.0f} s", flush=True)
    path = write(budget, workloads, arms, targets, results, bests, args.out, time.perf_counter() - started, work)
    print(path.read_text())
    return path


if __name__ == "__main__":
    main()
