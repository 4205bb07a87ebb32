"""The report's comparison of cooldown branches: final validation loss (and accuracy) against total steps.

A sweep of ``lrsched-branch -m`` (:mod:`lrsched_pl.branch`) holds one branch per cooldown; :func:`add_branches`,
called by :func:`lrsched_pl.report.write_report`, finds them (a job whose config has a
:class:`~lrsched_pl.cooldown.CooldownCallback` at ``callbacks.cooldown``) and writes into the report folder:

- ``branches.csv`` and a "Cooldown branches" section of ``report.md``: a row per branch with its shape, ``min_lr``,
  the step it starts at (``t0``, the checkpoint's), its cooldown steps, its total steps (``t0 + steps``), its final
  ``val/loss`` and ``val/acc`` (its last validation), and the parent's ``val/loss`` at its last validation up to that
  total, when the parent trained that far (what the same steps give without a cooldown);
- ``branches.png``: the final metric of each branch against its total steps, a line per shape (and ``min_lr``), with
  the parent's validation curve against steps for reference and the branch point marked.

Steps are optimizer steps done: a validation logged at TensorBoard step ``s`` (Lightning logs it at the last
batch's step) comes after ``s + 1`` steps.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lrsched_pl.rundir import checkpoint_step, run_dir_of

TARGET = "lrsched_pl.cooldown.CooldownCallback"
METRICS = ("val/loss", "val/acc")
FIGURE = "branches.png"
TABLE = "branches.csv"
COLUMNS = ["branch", "shape", "min_lr", "from step", "cooldown steps", "total steps", "final val/loss",
           "final val/acc", "parent val/loss (at step)", "notes"]  # fmt: skip


@dataclass
class Branch:
    """One cooldown branch of a sweep: its settings, where it starts and ends, its final metrics."""

    name: str
    shape: str
    min_lr: float
    parent: Path | None
    checkpoint: str
    start: int
    steps: int
    final: dict[str, float]
    last_step: int  # optimizer steps done at its last validation
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.start + self.steps

    @property
    def series(self) -> str:
        """The line it belongs to in the figure: its parent's branches of one shape and ``min_lr``."""
        return f"{self.shape}" + (f", min_lr {self.min_lr:g}" if self.min_lr else "")


@cache
def curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``(optimizer steps done, value)`` of each of :data:`METRICS` and ``(step, lr)`` of the ``lr-*`` tags."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    found = {m: [(e.step + 1, e.value) for e in acc.Scalars(m)] for m in METRICS if m in tags}
    found.update({t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags if t.startswith("lr-")})
    return found


def load_branch(job_dir: Path) -> Branch | None:
    """The branch in ``job_dir``, or ``None`` when the job is not a cooldown branch or has not validated yet."""
    path = job_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text()) or {}
    node = (config.get("callbacks") or {}).get("cooldown") or {}
    if node.get("_target_") != TARGET or not config.get("ckpt_path"):
        return None
    ckpt = Path(str(config["ckpt_path"]))
    found = curves(job_dir)
    lr = next((points for tag, points in sorted(found.items()) if tag.startswith("lr-")), [])
    start = lr[0][0] if lr else checkpoint_step(ckpt)
    if start is None or not found.get("val/loss"):
        return None
    steps = int(node["steps"]) if node.get("steps") is not None else int(node["until"]) - start
    branch = Branch(
        name=job_dir.name,
        shape=str(node.get("shape", "1-sqrt")),
        min_lr=float(node.get("min_lr", 0.0)),
        parent=run_dir_of(ckpt),
        checkpoint=ckpt.name,
        start=start,
        steps=steps,
        final={m: found[m][-1][1] for m in METRICS if found.get(m)},
        last_step=found["val/loss"][-1][0],
    )
    if branch.last_step < branch.total:
        branch.notes.append(f"unfinished: last validation after step {branch.last_step}")
    return branch


def parent_at(branch: Branch, metric: str = "val/loss") -> tuple[int, float] | None:
    """The parent's ``metric`` at its last validation up to the branch's total steps, if it trained that far."""
    if branch.parent is None or not (branch.parent / ".hydra").is_dir():
        return None
    points = curves(branch.parent).get(metric, [])
    if not points or points[-1][0] < branch.total:
        return None
    return max((p for p in points if p[0] <= branch.total), default=None)


def _cells(branch: Branch) -> list[str]:
    parent = parent_at(branch)
    return [branch.name, branch.shape, f"{branch.min_lr:g}", str(branch.start), str(branch.steps), str(branch.total),
            *(f"{branch.final[m]:.4f}" if m in branch.final else "–" for m in METRICS),
            "–" if parent is None else f"{parent[1]:.4f} ({parent[0]})", "; ".join(branch.notes)]  # fmt: skip


def _markdown(branches: list[Branch], figure: Path) -> str:
    parents = sorted({f"`{b.parent.name if b.parent else '?'}` at `{b.checkpoint}` (step {b.start})" for b in branches})
    lines = ["", "## Cooldown branches", "",
             f"{len(branches)} branches of {', '.join(parents)}: each run's final (last) validation against its total "
             "optimizer steps, the checkpoint's plus the cooldown's. **Parent val/loss**: the parent's own, without a "
             "cooldown, at its last validation up to the same total (– where the parent stopped before it).", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]  # fmt: skip
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(b)) + " |" for b in branches]
    return "\n".join([*lines, "", f"![cooldown branches]({figure.name})", ""])


def _plot(branches: list[Branch], path: Path) -> None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # a bare Figure draws with Agg and leaves pyplot's backend alone
    from matplotlib.ticker import MaxNLocator

    metrics = [m for m in METRICS if any(m in b.final for b in branches)]
    fig = Figure(figsize=(6.2 * len(metrics), 4.4), dpi=110)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    series = sorted({b.series for b in branches})
    colours = {s: colormaps["tab10"](i % 10) for i, s in enumerate(series)}
    totals = [b.total for b in branches]
    start = min(b.start for b in branches)
    shown_from = start - (max(totals) - start) // 2  # the parent's curve around the branches, not from step 0
    for ax, metric in zip(axes, metrics):
        for parent in sorted({b.parent for b in branches if b.parent is not None}):
            points = curves(parent).get(metric, [])
            beyond = next((i for i, (s, _) in enumerate(points) if s >= max(totals)), len(points) - 1)
            points = [p for p in points[: beyond + 1] if p[0] >= shown_from]  # to just past the longest branch
            if points:
                ax.plot(*zip(*points), color="0.55", ls="--", marker=".", ms=4, label=f"parent {parent.name} "
                        "(no cooldown)")  # fmt: skip
        for s in series:
            mine = sorted((b.total, b.final[metric]) for b in branches if b.series == s and metric in b.final)
            ax.plot(*zip(*mine), color=colours[s], marker="o", label=f"cooldown {s}")
        for start in sorted({b.start for b in branches}):
            ax.axvline(start, color="0.3", ls=":", lw=1)
        ax.set(title=f"final {metric} of each branch", xlabel="total optimizer steps (dotted: branch point)",
               ylabel=metric)  # fmt: skip
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Cooldown branches: final validation against total steps")
    fig.savefig(path, bbox_inches="tight")


def _write_csv(branches: list[Branch], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["branch", "shape", "min_lr", "start_step", "cooldown_steps", "total_steps",
                         "final_val_loss", "final_val_acc", "parent", "parent_val_loss", "parent_step", "notes"])
        for b in branches:
            parent = parent_at(b)
            writer.writerow([b.name, b.shape, b.min_lr, b.start, b.steps, b.total, b.final.get("val/loss", ""),
                             b.final.get("val/acc", ""), b.parent or "", "" if parent is None else parent[1],
                             "" if parent is None else parent[0], "; ".join(b.notes)])  # fmt: skip


def find_branches(sweep_dir: Path) -> list[Branch]:
    """Every cooldown branch with a validation among the sweep's job directories, by parent, shape and length."""
    found = [load_branch(d) for d in sorted(sweep_dir.iterdir()) if d.is_dir()] if sweep_dir.is_dir() else []
    branches = [b for b in found if b is not None]
    return sorted(branches, key=lambda b: (str(b.parent), b.series, b.total, b.name))


def add_branches(report: Any) -> list[Path]:
    """Adds the branch comparison to a written :class:`lrsched_pl.report.Report`, if its sweep holds branches.

    Writes ``branches.png`` and ``branches.csv`` beside ``report.md``, appends the table and the figure to
    ``report.md`` and the figure to ``report.figures``.

    Returns:
        The files written (none for a sweep without cooldown branches).
    """
    curves.cache_clear()  # a report written again reads the events again
    branches = find_branches(Path(report.sweep_dir))
    if not branches:
        return []
    out = Path(report.markdown).parent
    figure, table = out / FIGURE, out / TABLE
    _plot(branches, figure)
    _write_csv(branches, table)
    with open(report.markdown, "a") as f:
        f.write(_markdown(branches, figure))
    report.figures.append(figure)
    return [figure, table]
