"""Helpers shared by the benchmarks: machine description, robust statistics, Markdown output.

Imports nothing heavy (no torch), so that ``cli_latency`` measures its subprocesses from a light parent.
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import statistics
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The first ``model name`` of /proc/cpuinfo (``unknown`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """A Markdown bullet list: cores, CPU, versions, date."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"- machine: `nproc` = {os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), CPU `{cpu_model()}`, no GPU",
        f"- Python {platform.python_version()}, torch {_version('torch')}, lightning {_version('lightning')}, "
        f"hydra-core {_version('hydra-core')}",
        f"- date: {now}",
    ]
    return "\n".join(lines)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def quartiles(xs: Sequence[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles (inclusive method; the extremes for fewer than 4 values)."""
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; cells are ``str()``-ed."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def write_results(name: str, title: str, body: str) -> Path:
    """Writes ``benchmarks/results/<name>.md`` (title, machine, body) and returns its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    rerun = f"Re-run: `python -m benchmarks.{name}` from the repository root."
    text = f"# {title}\n\n{rerun}\n\n{machine()}\n\n{body.strip()}\n"
    path.write_text(text)
    return path


def quiet_lightning() -> None:
    """Silences Lightning's per-fit warnings and info lines that say nothing about a benchmark (no torch import)."""
    for message in (".*does not have many workers.*", ".*GPU available but not used.*",
                    ".*isinstance.treespec, LeafSpec.*"):  # fmt: skip
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
