"""Aggregating a sweep's runs into configurations: the seeds of one configuration as mean ± sample std, the
baseline each configuration is compared with, and the runs that stopped early.

A configuration is a job's overrides without ``seed=`` (and ``ckpt_path=``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lrsched_pl.report_runs import METRICS, Run, override_key

BASELINE = "constant"
REACH_DEFINITION = (
    "**Epochs to baseline best**: the baseline is the `constant` configuration (without a plateau) with the same "
    "optimizer (and LR, where one matches), else the first one; its best is the minimum over epochs of its "
    "seed-mean `val/loss` curve. A configuration's value is the first epoch (1-based, from the logged `epoch`) at "
    'which its seed-mean `val/loss` is ≤ that best, or "not reached". A seed mean at an epoch averages the seeds '
    "that reached it."
)


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))

    def __str__(self) -> str:
        return f"{self.mean:.4f}" + (f" ± {self.std:.4f}" if self.n > 1 else "")


@dataclass
class Row:
    """One configuration: its runs (one per seed) and their :class:`Stat` per metric."""

    label: str  # the overrides without seed=, sorted and joined by ",", or "(defaults)"
    schedule: str
    schedule_params: str
    optimizer: str
    lr: float | None
    runs: list[Run]
    final: dict[str, Stat]
    best: dict[str, Stat]
    wall_s: float
    notes: list[str] = field(default_factory=list)
    baseline: str | None = None  # the label of its baseline; None when the sweep has none
    epochs_to_baseline: int | None = None  # None: not reached, or no baseline
    short: str = ""  # the label without the overrides every configuration has

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def is_baseline(self) -> bool:
        return self.schedule == BASELINE and "| plateau:" not in self.schedule_params

    def mean_curve(self, metric: str) -> tuple[list[int], list[float], list[float]]:
        """``(epochs, mean, std)`` over the seeds at each validation, each point over the seeds that reached it."""
        curves = [r.curves.get(metric, []) for r in self.runs]
        points = [[c[k] for c in curves if len(c) > k] for k in range(max(map(len, curves)))]
        stats = [Stat.of([v for _, v in p]) for p in points]
        return [p[0][0] for p in points], [s.mean for s in stats], [s.std for s in stats]


@dataclass
class Report:
    """What :func:`lrsched_pl.report.write_report` found and wrote; ``rows`` sorted by the final ``metric``, best
    first.

    ``missing`` has a line per job without results (no event file, no ``val/loss``, no directory),
    ``incomplete`` one per run with fewer validations than the longest, ``common`` the overrides every
    configuration has (left out of the short labels), ``no_baseline`` why epochs-to-baseline is n/a.
    """

    sweep_dir: Path
    metric: str
    markdown: Path
    csv: Path
    figures: list[Path]
    rows: list[Row]
    missing: list[str]
    incomplete: list[str]
    common: list[str]
    no_baseline: str | None


def _seed_stats(runs: list[Run], pick: Callable[[str, list[float]], float]) -> dict[str, Stat]:
    """Per metric, the :class:`Stat` over runs of ``pick(metric, the run's values)``."""
    values = {m: [pick(m, [v for _, v in r.curves[m]]) for r in runs if r.curves.get(m)] for m in METRICS}
    return {m: Stat.of(v) for m, v in values.items() if v}


def _row(runs: list[Run]) -> Row:
    hp = runs[0].hparams
    return Row(
        label=",".join(runs[0].config) or "(defaults)",
        schedule=str(hp.get("schedule", "?")),
        schedule_params=str(hp.get("schedule_params", "")),
        optimizer=str(hp.get("optimizer", "?")),
        lr=float(hp["lr"]) if "lr" in hp else None,
        runs=runs,
        final=_seed_stats(runs, lambda m, values: values[-1]),
        best=_seed_stats(runs, lambda m, values: METRICS[m](values)),
        wall_s=statistics.fmean(r.wall_s for r in runs),
    )


def rows_of(runs: list[Run]) -> list[Row]:
    """One :class:`Row` per configuration (the runs that share ``config``), in the order of their overrides."""
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.config, []).append(run)
    return [_row(group) for _, group in sorted(groups.items())]


def sort_rows(rows: list[Row], metric: str) -> None:
    """Sorts ``rows`` by their final ``metric``, best first; rows without it last."""
    sign = 1 if METRICS[metric] is min else -1
    rows.sort(key=lambda r: (metric not in r.final, sign * r.final[metric].mean if metric in r.final else 0.0))


def _seed(run: Run) -> str:
    """The run's ``seed=`` override, else its name."""
    return next((o for o in run.overrides if override_key(o) == "seed"), run.name)


def is_branch_sweep(rows: list[Row]) -> bool:
    """Whether every run is a cooldown branch (``lrsched-branch``): runs of different lengths on purpose, compared by
    :mod:`lrsched_pl.branch_report`, not against a baseline."""
    return all(any("callbacks.cooldown" in o for o in run.config) for row in rows for run in row.runs)


def flag_incomplete(rows: list[Row], lengths: bool = True) -> list[str]:
    """Notes each run whose job failed or was interrupted and, with ``lengths``, each with fewer validations than
    the sweep's longest; returns a line per such run."""
    n = max(len(run.curves["val/loss"]) for row in rows for run in row.runs) if lengths else 0
    lines = []
    for row in rows:
        for run in (run for run in row.runs if run.outcome):
            row.notes.append(f"{_seed(run)} {run.outcome}")
            lines.append(f"{run.name}: {run.outcome}")
        for run in (run for run in row.runs if len(run.curves["val/loss"]) < n):
            seed = _seed(run)
            row.notes.append(f"{seed} incomplete ({len(run.curves['val/loss'])} of {n} epochs)")
            lines.append(f"{run.name}: incomplete ({len(run.curves['val/loss'])} of {n} epochs)")
    return lines


def assign_baselines(rows: list[Row]) -> str | None:
    """Sets each row's baseline and epochs to reach its best ``val/loss`` (:data:`REACH_DEFINITION`).

    Returns:
        Why there is no baseline, or ``None``.
    """
    constants = [row for row in rows if row.is_baseline]
    if not constants:
        return f"the sweep has no `{BASELINE}` configuration without a plateau (add `schedule={BASELINE}` to it)"
    for row in rows:
        base = max(constants, key=lambda b: (b.optimizer == row.optimizer, b.lr == row.lr))  # the first of ties
        target = min(base.mean_curve("val/loss")[1])
        epochs, means, _ = row.mean_curve("val/loss")
        row.baseline = base.label
        row.epochs_to_baseline = next((e for e, v in zip(epochs, means) if v <= target), None)
        if "baseline" not in base.notes:
            base.notes.insert(0, "baseline")
    return None


def shorten(rows: list[Row]) -> list[str]:
    """Sets each row's ``short`` label to its overrides not shared by all rows; returns the shared ones."""
    configs = [row.runs[0].config for row in rows]
    common = set.intersection(*map(set, configs)) if len(rows) > 1 else set()
    for row, config in zip(rows, configs):
        row.short = ",".join(o for o in config if o not in common) or "(defaults)"
    return sorted(common)
