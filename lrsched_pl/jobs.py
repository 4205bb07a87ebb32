"""What a sweep knows about its jobs, on disk: the grid (``<sweep dir>/jobs.yaml``) and one record per job.

A job's record, ``<sweep dir>/results/<job number>.yaml``, is written where the job runs (a joblib worker, a SLURM
node): ``running`` when it starts, ``completed`` or ``failed`` when it ends. A record still ``running`` when the
sweep ends belongs to a job that was stopped (a signal, a killed worker); the process that launched the sweep then
rewrites it as ``interrupted`` or ``failed``. A job of the grid without a record never started. Files are replaced
atomically, so a reader never sees half a record.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

RESULTS_DIR = "results"
GRID_FILE = "jobs.yaml"
COMPLETED, FAILED, INTERRUPTED, RUNNING, NOT_STARTED = "completed", "failed", "interrupted", "running", "not started"
# How the summary and the report name each status.
SHOWN = {COMPLETED: "finished", FAILED: "failed", INTERRUPTED: "interrupted", RUNNING: "running",
         NOT_STARTED: "not started"}  # fmt: skip


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    os.replace(tmp, path)


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def write_record(sweep_dir: Path, record: dict[str, Any]) -> None:
    """Writes ``results/<record["num"]>.yaml``."""
    _write(Path(sweep_dir) / RESULTS_DIR / f"{record['num']}.yaml", record)


def read_record(sweep_dir: Path, num: int) -> dict[str, Any] | None:
    record = _read(Path(sweep_dir) / RESULTS_DIR / f"{num}.yaml")
    return record if isinstance(record, dict) else None


def read_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job record of a sweep, ordered by job number."""
    paths = (Path(sweep_dir) / RESULTS_DIR).glob("*.yaml")
    records = [r for r in map(_read, paths) if isinstance(r, dict) and "num" in r]
    return sorted(records, key=lambda r: int(r["num"]))


def write_grid(sweep_dir: Path, jobs: list[dict[str, Any]]) -> None:
    """``<sweep dir>/jobs.yaml``: every job of a grid sweep (``num``, ``overrides``, ``subdir``), known up front."""
    _write(Path(sweep_dir) / GRID_FILE, jobs)


def read_grid(sweep_dir: Path) -> list[dict[str, Any]] | None:
    """The grid written by :func:`write_grid`, or ``None`` (another sweeper, or no sweep there)."""
    grid = _read(Path(sweep_dir) / GRID_FILE)
    return grid if isinstance(grid, list) else None


def statuses(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job of the sweep with its status: the records, plus ``not started`` for grid jobs without one."""
    records = {int(r["num"]): r for r in read_records(sweep_dir)}
    for job in read_grid(sweep_dir) or []:
        records.setdefault(int(job["num"]), {**job, "name": job["subdir"], "status": NOT_STARTED})
    return [records[num] for num in sorted(records)]


def tally(records: list[dict[str, Any]]) -> str:
    """``4 jobs: 2 finished, 1 failed, 1 interrupted, 0 not started`` (``running`` only when some are)."""
    counts = {status: sum(r.get("status") == status for r in records) for status in SHOWN}
    shown = ", ".join(f"{counts[s]} {SHOWN[s]}" for s in SHOWN if counts[s] or s != RUNNING)
    return f"{len(records)} jobs: {shown}"


def number(value: Any) -> float | None:
    """A job's return value as a float (``nan`` included), or ``None`` when it returned no number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def error_line(error: BaseException) -> str:
    """``<type>: <first line of its message>``: how a record, a refusal and the summary name an error."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
