"""Reading a sweep's runs: each job's TensorBoard events, overrides and HPARAMS, and what became of jobs without any.

A job directory is one with ``.hydra/`` or an event file. Its overrides come from ``.hydra/overrides.yaml``, else
its directory name, else its HPARAMS; the jobs a sweep recorded (:mod:`lrsched_pl.jobs`) or, without records, the
jobs of a grid (``multirun.yaml``) name those that have no curves: failed, interrupted, not started.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lrsched_pl import jobs

METRICS = {"val/loss": min, "val/acc": max}  # metric -> how a run's best is picked (max: higher is better)


class EmptySweepError(ValueError):
    """A sweep directory without any job to report."""


@dataclass
class Run:
    """One job: its overrides (``config``: sorted, without ``seed=``), HPARAMS and curves.

    ``curves`` holds ``(1-based epoch, value)`` per validation for each of :data:`METRICS` logged, ``lr``
    ``(optimizer step, lr)`` per ``lr-*`` tag, ``wall_s`` its training time: the seconds from its first to its last
    event.
    """

    name: str
    overrides: tuple[str, ...]
    config: tuple[str, ...]
    hparams: dict[str, Any]
    curves: dict[str, list[tuple[int, float]]]
    lr: dict[str, list[tuple[int, float]]]
    wall_s: float
    outcome: str | None = None  # "failed (<error>)" or "interrupted" when its job's record says so


def override_key(override: str) -> str:
    """``+a.b=1`` -> ``a.b``: the key an override sets."""
    return override.split("=", 1)[0].lstrip("+~")


def split_overrides(joined: str) -> list[str]:
    """``a=1,b=[2,3]`` -> ``["a=1", "b=[2,3]"]``: overrides joined by "," as in Hydra's ``override_dirname``."""
    return re.split(r",(?=[^,=\[\]]+=)", joined)


def _job_overrides(job_dir: Path, hparams: dict[str, Any]) -> tuple[str, ...]:
    """The job's overrides: ``.hydra/overrides.yaml``, else its directory name, else its HPARAMS."""
    path = job_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        return tuple(str(o) for o in yaml.safe_load(path.read_text()) or [])
    parts = split_overrides(job_dir.name)
    return tuple(parts) if all("=" in p for p in parts) else tuple(f"{k}={v}" for k, v in sorted(hparams.items()))


def _hparams(acc: Any, job_dir: Path) -> dict[str, Any]:
    """The run's HPARAMS (session start info), else its ``hparams.yaml``."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:  # written without HPARAMS
        content = {}
    for raw in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            return {k: getattr(v, v.WhichOneof("kind")) for k, v in data.session_start_info.hparams.items()}
    path = job_dir / "hparams.yaml"
    return dict(yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def load_run(job_dir: Path) -> Run:
    """Reads the event files directly in one job directory.

    Raises:
        ValueError: Saying why the job has nothing to report (no event file, no ``val/loss`` yet, unreadable).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not any(job_dir.glob("events.out.tfevents.*")):
        raise ValueError("no event file yet")
    # "No path found after ..." for every run; "Detected out of order event.step": a resumed run's purge_step at work
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    acc = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})
    try:
        acc.Reload()  # skips a truncated last record by itself
    except Exception as err:  # noqa: BLE001 - corrupt files raise several kinds; report the job, do not crash
        raise ValueError(f"unreadable event file ({type(err).__name__}: {err})") from err
    tags = acc.Tags()["scalars"]
    if "val/loss" not in tags:
        raise ValueError("no val/loss logged yet")
    scalars = {tag: acc.Scalars(tag) for tag in tags}
    epoch_at = {e.step: int(e.value) for e in scalars.get("epoch", [])}
    hparams = _hparams(acc, job_dir)
    overrides = _job_overrides(job_dir, hparams)
    return Run(
        name=job_dir.name,
        overrides=overrides,
        config=tuple(sorted(o for o in overrides if override_key(o) not in ("seed", "ckpt_path"))),
        hparams=hparams,
        curves={m: [(epoch_at.get(e.step, k) + 1, e.value) for k, e in enumerate(scalars[m])] for m in METRICS
                if m in scalars},  # fmt: skip
        lr={t: [(e.step, e.value) for e in s] for t, s in scalars.items()
            if t.startswith("lr-") and "momentum" not in t},  # fmt: skip
        wall_s=max(e.wall_time for s in scalars.values() for e in s) - acc.FirstEventTimestamp(),
    )


def expected_jobs(sweep_dir: Path) -> list[tuple[str, ...]] | None:
    """The overrides of every job of a basic (grid) sweep, expanded from ``multirun.yaml`` by Hydra's BasicSweeper.

    Returns:
        ``None`` for other sweepers (Optuna decides its jobs as it goes) or without ``multirun.yaml``.

    Raises:
        ValueError: When Hydra cannot expand the overrides (e.g. ``glob(...)``, which needs the config).
    """
    path = sweep_dir / "multirun.yaml"
    hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra", {}) if path.is_file() else {}
    sweeper = hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]  # what BasicSweeper.sweep prepends
    task = params + list((hydra.get("overrides") or {}).get("task") or [])
    try:
        batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(task), max_batch_size=None)
    except Exception as err:  # noqa: BLE001 - Hydra's parser raises its own exception types
        raise ValueError(f"could not expand the sweep's overrides {task} ({err})") from err
    return [tuple(job) for batch in batches for job in batch]


def _is_job(path: Path) -> bool:
    return path.is_dir() and ((path / ".hydra").is_dir() or any(path.glob("events.out.tfevents.*")))


def _outcome(record: dict[str, Any]) -> str:
    """What a job record says about a job the report has no curves of."""
    status = record.get("status")
    if status == jobs.FAILED:
        return f"failed ({record.get('error')})"
    return jobs.SHOWN.get(status, str(status))


def collect(sweep_dir: Path) -> tuple[list[Run], list[str]]:
    """Every run with a ``val/loss`` in ``sweep_dir``, and a line for each job that has none or has no directory.

    A job the sweep recorded (``results/<n>.yaml``, ``jobs.yaml``) is named with its status: failed (with its
    error), interrupted, not started. Without records, the jobs of a grid come from ``multirun.yaml``.

    Raises:
        EmptySweepError: When ``sweep_dir`` holds neither a job directory (one with ``.hydra/`` or an event file)
            nor a job record.
    """
    job_dirs = [d for d in sorted(sweep_dir.iterdir()) if _is_job(d)] if sweep_dir.is_dir() else []
    records = {Path(str(r.get("dir") or r.get("subdir"))).name: r for r in jobs.statuses(sweep_dir)}
    if not job_dirs and not records:
        raise EmptySweepError(f"no sweep jobs in {sweep_dir} (expected sub-directories with .hydra/ or events)")
    runs, missing = [], []
    for job_dir in job_dirs:
        record = records.get(job_dir.name)
        try:
            runs.append(load_run(job_dir))
            if record and record.get("status") in (jobs.FAILED, jobs.INTERRUPTED):
                runs[-1].outcome = _outcome(record)  # its curves up to the failure are in the table
        except ValueError as err:
            missing.append(f"{job_dir.name}: {_outcome(record) + '; ' if record else ''}{err}")
    seen = {d.name for d in job_dirs}
    if records:
        missing += [f"{name}: {_outcome(r)}, no job directory" for name, r in records.items() if name not in seen]
        return runs, missing
    try:
        expected = expected_jobs(sweep_dir) or []
    except ValueError as err:
        expected, missing = [], [*missing, f"jobs without a directory not checked: {err}"]
    seen_overrides = {frozenset(_job_overrides(d, {})) for d in job_dirs}
    missing += [f"{','.join(sorted(job))}: not started, no job directory"
                for job in expected if frozenset(job) not in seen_overrides]  # fmt: skip
    return runs, missing
