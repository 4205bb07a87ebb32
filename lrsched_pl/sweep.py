"""A sweep that checks every job first, tells the truth at the end, and continues where it stopped.

Hydra calls :class:`SweepSummary` (``hydra.callbacks`` in ``conf/train.yaml``) around a multirun and every job:

- **Before any job** (``on_multirun_start``): a grid sweep (Hydra's BasicSweeper, under any launcher) is expanded as
  the sweeper will expand it, and every job's config is composed and checked (``lrsched_pl.config.validate``,
  ``lrsched_pl.launch.check_launch``, the objective); so are the job directories (one per job) and the sweep
  directory (one sweep per directory). One bad job refuses the sweep with one line, and nothing is written.
- **Around each job** (where it runs: a joblib worker, a SLURM node): a record in ``<sweep>/results/<n>.yaml``
  (:mod:`lrsched_pl.jobs`), ``running``, then ``completed`` or ``failed``, and one line per job.
- **At the end**, in the process that launched the sweep, however it ended (all jobs done, a job failed, a worker
  killed, a signal): the summary counts every job of the grid as finished, failed, interrupted or not started, then
  the best job, the report and the TensorBoard command. Hydra skips ``on_multirun_end`` when the sweeper raises, so
  the summary runs from a wrapper around the sweeper's ``sweep()``, installed by ``on_multirun_start`` (not from
  ``atexit``, where imports fail during interpreter shutdown). A sweep stopped by a signal exits 130 (SIGINT) or 143
  (SIGTERM), one with a failed job 1.

Running the same command again with the same ``hydra.sweep.dir`` continues the sweep: :func:`continue_job` keeps a
finished job's result, resumes a stopped job from ``<job dir>/checkpoints/last.ckpt`` in its own directory, and
starts the others.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lrsched_pl import jobs
from lrsched_pl.errors import ConfigValueError, full_error
from lrsched_pl.rundir import CHECKPOINTS, LAST_CHECKPOINT, holds_run, holds_sweep, rank_zero

log = logging.getLogger(__name__)

BEST_FILE = "best_job.yaml"
DEFAULT_MODEL_METRICS = ("val/loss", "val/acc", "train/loss")  # what lrsched_pl.models.Classifier logs
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the shell's 128 + signal number
_LISTED = 10  # jobs listed per status in the summary


class SweepInterrupted(BaseException):
    """A signal stopped the sweep in the process that launched it (not an ``Exception``: nothing may catch it)."""


class SweepRefused(ValueError):
    """A sweep refused before its first job, with the one line that says why."""


@dataclass(frozen=True)
class Job:
    """One job of a grid sweep: its number (``hydra.job.num``), overrides and directory under the sweep dir."""

    num: int
    overrides: list[str]
    subdir: str

    def describe(self) -> str:
        return f"#{self.num} ({' '.join(self.overrides) or 'no overrides'})"


@dataclass(frozen=True)
class Kept:
    """A job that finished in an earlier run of the same sweep: its recorded objective value."""

    value: float | None


def _number(value: Any) -> float | None:
    """A job's return value as a float (``nan`` included), or ``None`` when it returned no number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def best_result(results: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The completed job with the best finite objective value (``direction``: minimize or maximize)."""
    completed = [r for r in results if r.get("status") == jobs.COMPLETED]
    scored = [r for r in completed if math.isfinite(_number(r.get("value")) or math.nan)]
    if not scored:
        return None
    pick = min if direction == "minimize" else max
    return pick(scored, key=lambda r: float(r["value"]))


def check_objective(cfg: DictConfig) -> None:
    """Refuses an ``objective`` the default model never logs (a model of your own is checked when it validates)."""
    target = str(OmegaConf.select(cfg, "model._target_", default="") or "")
    objective = cfg.get("objective")
    if target.startswith("lrsched_pl.models.") and objective not in DEFAULT_MODEL_METRICS:
        raise ConfigValueError(
            "objective", objective, f"a metric the default model logs: {', '.join(DEFAULT_MODEL_METRICS)}"
        )


def expand_grid(config: DictConfig) -> list[list[str]] | None:
    """Every job's overrides in the order Hydra's BasicSweeper launches them, or ``None`` for another sweeper."""
    sweeper = config.hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]  # as BasicSweeper.sweep
    task = params + list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    batches = BasicSweeper.split_arguments(parser.parse_overrides(task), max_batch_size=None)
    return [list(job) for batch in batches for job in batch]


def check_jobs(config: DictConfig, grid: list[list[str]]) -> list[Job]:
    """Composes every job's config as the launchers do (``load_sweep_config``) and checks it and its directory.

    Raises:
        SweepRefused: Naming the first bad job's number, overrides and key; or two jobs that share a directory.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from lrsched_pl.config import validate
    from lrsched_pl.launch import check_launch

    loader = GlobalHydra.instance().config_loader()
    sweep_dir = str(config.hydra.sweep.dir)
    saved = HydraConfig.instance().cfg
    checked: list[Job] = []
    try:
        for num, overrides in enumerate(grid):
            job = Job(num, overrides, "")
            try:
                cfg = loader.load_sweep_config(config, list(overrides))
                with open_dict(cfg):
                    cfg.hydra.job.id = num
                    cfg.hydra.job.num = num
                HydraConfig.instance().set_config(cfg)  # ${hydra:...} in the subdir and the task config
                job = Job(num, overrides, str(OmegaConf.select(cfg, "hydra.sweep.subdir")))
                with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
                    cfg.hydra.runtime.output_dir = os.path.abspath(os.path.join(sweep_dir, job.subdir))
                HydraConfig.instance().set_config(cfg)
                task = copy.deepcopy(cfg)
                with read_write(task), open_dict(task):
                    del task["hydra"]
                validate(task)
                check_launch(task, multirun=True, launcher=cfg.hydra.get("launcher"))
                check_objective(task)
            except Exception as error:  # noqa: BLE001 - Hydra's composition errors have several types
                message = error.describe() if isinstance(error, ConfigValueError) else _first_line(error)
                raise SweepRefused(f"job {job.describe()}: {message}") from None
            checked.append(job)
    finally:
        HydraConfig.instance().cfg = saved
    _check_subdirs(checked)
    return checked


def _check_subdirs(grid: list[Job]) -> None:
    """One directory per job, each name a valid one (at most 255 bytes per path component)."""
    owner: dict[str, Job] = {}
    hint = "(e.g. hydra.sweep.subdir=${hydra.job.num}, or keep the swept keys out of override_dirname.exclude_keys)"
    for job in grid:
        if job.subdir in owner:
            error = ConfigValueError(
                "hydra.sweep.subdir", job.subdir,
                f"different for every job, but jobs {owner[job.subdir].describe()} and {job.describe()} both get it "
                + hint,
            )  # fmt: skip
            raise SweepRefused(error.describe())
        if any(len(part.encode()) > 255 for part in Path(job.subdir).parts):
            error = ConfigValueError(
                "hydra.sweep.subdir", job.subdir, f"at most 255 bytes per directory name, for job {job.describe()} "
                "(e.g. hydra.sweep.subdir=${hydra.job.num})"
            )  # fmt: skip
            raise SweepRefused(error.describe())
        owner[job.subdir] = job


def check_sweep_dir(sweep_dir: Path, grid: list[Job] | None) -> bool:
    """Whether the sweep continues one already in ``sweep_dir`` (the same jobs in the same directories).

    Raises:
        SweepRefused: When ``sweep_dir`` holds a run, or a sweep of other jobs (or of a sweeper that cannot
            continue one, such as Optuna's in-memory search).
    """
    if holds_run(sweep_dir):
        raise SweepRefused(ConfigValueError(
            "hydra.sweep.dir", str(sweep_dir), "a directory that holds no run (this one holds a single run's files): "
            "leave hydra.sweep.dir unset for a new directory").describe())  # fmt: skip
    if not holds_sweep(sweep_dir):
        return False
    previous = jobs.read_grid(sweep_dir)
    if grid is not None and previous == [_grid_entry(job) for job in grid]:
        return True
    if grid is None:
        raise SweepRefused(ConfigValueError(
            "hydra.sweep.dir", str(sweep_dir), "a directory that holds no sweep: this sweeper (e.g. Optuna's) decides "
            "its jobs as it goes and cannot continue one in place; leave hydra.sweep.dir unset for a new "
            "directory").describe())  # fmt: skip
    raise SweepRefused(ConfigValueError(
        "hydra.sweep.dir", str(sweep_dir), "a directory that holds no other sweep (this one holds a sweep of other "
        "jobs): leave hydra.sweep.dir unset for a new directory; to continue that sweep, run its own command "
        "again").describe())  # fmt: skip


def _grid_entry(job: Job) -> dict[str, Any]:
    return {"num": job.num, "overrides": list(job.overrides), "subdir": job.subdir}


def continue_job(cfg: DictConfig) -> Kept | None:
    """Called by a sweep job before it trains: what an earlier run of the same sweep left for it.

    Returns:
        :class:`Kept` for a job that finished before (not trained again). ``None`` otherwise: a job stopped before
        (interrupted, failed, killed) resumes from its ``checkpoints/last.ckpt`` (``cfg.ckpt_path`` is set to it) or,
        without one, starts again in an emptied directory; a new job just starts.
    """
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    record = jobs.read_record(Path(hydra.sweep.dir), int(hydra.job.num))
    if record is None:
        return None
    if record.get("status") == jobs.COMPLETED:
        return Kept(_number(record.get("value")))
    if record.get("previous") is None:  # its first attempt
        return None
    job_dir = Path(hydra.runtime.output_dir)
    last = job_dir / CHECKPOINTS / LAST_CHECKPOINT
    if last.is_file():
        with read_write(cfg):
            cfg.ckpt_path = str(last)
        log.info(f"#{hydra.job.num} resumes from {last}")
        return None
    for path in [*job_dir.glob("events.out.tfevents.*"), job_dir / "hparams.yaml", job_dir / CHECKPOINTS]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()  # an attempt stopped before its first checkpoint: its curves would mix with the new ones
    return None


class SweepSummary(Callback):
    """Checks a sweep's jobs first, records each job, and prints the true outcome of the sweep at the end.

    Args:
        report: Write ``lrsched_pl.report`` into ``<sweep dir>/report`` when the sweep ends.
    """

    def __init__(self, report: bool = True) -> None:
        self.report = report
        self._started = 0.0
        self._kept: dict[str, Any] | None = None
        self._summarized = False
        self._grid: list[Job] | None = None
        self._signal: int | None = None
        self._ending = False
        self._previous_handlers: dict[int, Any] = {}
        self._lock: Any = None
        self._created = False

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into joblib workers with Hydra's context: without the lock file and signal handlers."""
        return {**self.__dict__, "_lock": None, "_previous_handlers": {}}

    # ----- before the first job, in the process that launches the sweep

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Checks the sweep and every job of a grid, claims the sweep directory and takes over the sweep's end.

        Hydra turns a callback's exception into a warning, so a refused sweep exits here (1), before anything is
        written or launched.
        """
        from lrsched_pl.config import validate
        from lrsched_pl.launch import check_launch

        sweep_dir = Path(str(config.hydra.sweep.dir))  # resolved, and cached, before any job config is composed
        try:
            validate(config)
            check_launch(config, multirun=True, launcher=config.hydra.get("launcher"))
            check_objective(config)
            grid = expand_grid(config)
            self._grid = None if grid is None else check_jobs(config, grid)
            resumed = check_sweep_dir(sweep_dir, self._grid)
        except (ConfigValueError, SweepRefused) as error:
            print(f"Error in the sweep, no job launched: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        self._created = not sweep_dir.exists()
        self._claim(sweep_dir)
        if self._grid is not None:
            jobs.write_grid(sweep_dir, [_grid_entry(job) for job in self._grid])
        if resumed:
            done = sum(r.get("status") == jobs.COMPLETED for r in jobs.read_records(sweep_dir))
            log.info(f"Continuing the sweep in {sweep_dir}: {done} of {len(self._grid or [])} jobs finished before")
        self._catch_signals()
        self._take_over_sweep_end(config)

    def _claim(self, sweep_dir: Path) -> None:
        """Holds ``results/.lock`` for the whole sweep: a second sweep into the same directory is refused."""
        import fcntl

        results = sweep_dir / jobs.RESULTS_DIR
        results.mkdir(parents=True, exist_ok=True)
        self._lock = open(results / ".lock", "a+")  # noqa: SIM115 - held open until the process ends
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            error = ConfigValueError("hydra.sweep.dir", str(sweep_dir), "a directory no other sweep is writing to "
                                     "(another sweep is running there now)")  # fmt: skip
            print(f"Error in the sweep, no job launched: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    def _catch_signals(self) -> None:
        """SIGINT and SIGTERM stop the sweep as "interrupted" instead of killing it without a summary.

        Inside a Lightning fit (a job of the basic launcher), Lightning's own SIGTERM handler calls this one and
        stops the fit at the next batch (``SIGTERMException``); elsewhere (between jobs, waiting for joblib's
        workers) the handler raises :class:`SweepInterrupted` itself.
        """

        def handler(signum: int, frame: Any) -> None:
            self._signal = signum
            if self._ending:
                return
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            if signal.getsignal(signal.SIGTERM) is handler:
                raise SweepInterrupted(signum)

        for signum in SIGNAL_EXIT:
            self._previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, handler)

    def _take_over_sweep_end(self, config: DictConfig) -> None:
        """Wraps the ``sweep()`` of the sweeper Hydra instantiates next, so the summary runs however it ends."""
        from hydra.core.plugins import Plugins

        plugins = Plugins.instance()

        def instantiate_sweeper(**kwargs: Any) -> Any:
            del plugins.instantiate_sweeper  # once: the singleton is pickled into joblib workers
            sweeper = plugins.instantiate_sweeper(**kwargs)
            sweep = sweeper.sweep
            sweeper.sweep = lambda arguments: self._run(config, sweep, arguments)
            return sweeper

        plugins.instantiate_sweeper = instantiate_sweeper

    def _run(self, config: DictConfig, sweep: Callable[[list[str]], Any], arguments: list[str]) -> Any:
        error: BaseException | None = None
        result = None
        try:
            result = sweep(arguments)
        except BaseException as caught:  # noqa: BLE001 - a signal or a killed worker must end with a summary too
            error = caught
            if self._signal is None and not isinstance(caught, Exception):
                from lrsched_pl import interrupt  # the job's own handler took the signal (lrsched_pl.app)

                self._signal = interrupt.received()
        finally:
            self._ending = True
            for signum, previous in self._previous_handlers.items():
                signal.signal(signum, previous)
        code = self._exit_code(error)
        started = self.summarize(config, error, interrupted=code is not None)
        if not started and self._created:  # nothing ran: leave no directory behind
            shutil.rmtree(Path(str(config.hydra.sweep.dir)), ignore_errors=True)
        if code is not None:
            raise SystemExit(code) from None
        if error is not None and _launcher_error(error) and not full_error():
            raise SystemExit(1) from None  # the summary said it; joblib's traceback would bury it
        if error is not None:
            raise error  # a job's own error: Hydra prints it with its traceback
        if any(r.get("status") != jobs.COMPLETED for r in jobs.statuses(Path(str(config.hydra.sweep.dir)))):
            raise SystemExit(1)
        return result

    def _exit_code(self, error: BaseException | None) -> int | None:
        """The exit code of a sweep stopped by a signal (130 SIGINT, 143 SIGTERM); ``None`` if none stopped it."""
        if error is None or isinstance(error, Exception):
            return None
        if self._signal is not None:
            return SIGNAL_EXIT.get(signal.Signals(self._signal), 128 + self._signal)
        if isinstance(error, KeyboardInterrupt):
            return 130
        if isinstance(error, SweepInterrupted) or type(error).__name__ == "SIGTERMException":
            return 143
        code = getattr(error, "code", 1)
        return code if isinstance(code, int) and code else 1

    # ----- around each job, where it runs

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Records the job as ``running`` (a job that finished in an earlier run of the sweep keeps its record)."""
        self._started = time.perf_counter()
        self._kept = None
        if config.hydra.mode != RunMode.MULTIRUN or not rank_zero():
            return
        sweep_dir, num = Path(config.hydra.sweep.dir), int(config.hydra.job.get("num") or 0)
        previous = jobs.read_record(sweep_dir, num)
        if previous is not None and previous.get("status") == jobs.COMPLETED:
            self._kept = previous
            return
        record = {**_identity(config), "status": jobs.RUNNING, "pid": os.getpid(),
                  "previous": None if previous is None else previous.get("status")}  # fmt: skip
        jobs.write_record(sweep_dir, record)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Records the job as ``completed`` (with its objective value) or ``failed`` (with its error) and prints it."""
        if config.hydra.mode != RunMode.MULTIRUN or not rank_zero():  # rank 0 speaks for a DDP or SLURM job
            return
        if self._kept is not None:
            log.info(_job_line(self._kept) + "  (finished before: kept)")
            return
        failed = job_return.status == JobStatus.FAILED
        record = {
            **_identity(config),
            "status": jobs.FAILED if failed else jobs.COMPLETED,
            "value": None if failed else _number(job_return.return_value),
            "seconds": round(time.perf_counter() - self._started, 3),
            "error": _first_line(job_return._return_value) if failed else None,
            "pid": os.getpid(),  # which process ran it (a joblib worker, a SLURM task)
        }
        previous = jobs.read_record(Path(config.hydra.sweep.dir), record["num"])
        record["previous"] = previous.get("previous") if previous else None
        log.info(_job_line(record))
        jobs.write_record(Path(config.hydra.sweep.dir), record)

    # ----- at the end, in the process that launched the sweep

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Hydra's end of a sweep without a failure; the wrapper around ``sweep()`` usually summarized already."""
        self.summarize(config, None, interrupted=False)

    def summarize(self, config: DictConfig, error: BaseException | None, interrupted: bool) -> bool:
        """Settles stopped jobs, prints the counts, the best job, the report and the TensorBoard command.

        Returns:
            Whether any job started (a sweep of 0 jobs prints nothing).
        """
        if self._summarized:
            return True
        self._summarized = True
        sweep_dir = Path(str(config.hydra.sweep.dir))
        _settle(sweep_dir, error, interrupted)
        results = jobs.statuses(sweep_dir)
        if not any(r["status"] != jobs.NOT_STARTED for r in results):
            return False
        counts = {status: [r for r in results if r["status"] == status] for status in jobs.SHOWN}
        head = f"Sweep interrupted ({signal.Signals(self._signal).name})" if interrupted and self._signal else (
            "Sweep interrupted" if interrupted else "Sweep finished")  # fmt: skip
        lines = [f"{head}: {jobs.tally(results)}, in {sweep_dir}"]
        for status in (jobs.FAILED, jobs.INTERRUPTED, jobs.RUNNING, jobs.NOT_STARTED):
            lines += [f"  {jobs.SHOWN[status]}: {_job_line(r)}" for r in counts[status][:_LISTED]]
            if len(counts[status]) > _LISTED:
                lines.append(f"  ... and {len(counts[status]) - _LISTED} more {jobs.SHOWN[status]}")
        direction = str(config.get("objective_direction", "minimize"))
        best = best_result(results, direction)
        if best is not None:
            lines.append(f"Best ({direction} {best['objective']}): {_job_line(best)}")
            lines.append(f"  its config: {_write_best(sweep_dir, best, direction)}")
        if self.report:
            lines += _report_lines(sweep_dir, str(config.get("objective", "val/loss")))
        lines.append(f"TensorBoard: tensorboard --logdir {sweep_dir}")
        if len(counts[jobs.COMPLETED]) < len(results) and self._grid is not None:
            lines.append(f"Continue it: {_same_command(sweep_dir)}")
        log.info("\n".join(lines))
        return True


def _launcher_error(error: BaseException) -> bool:
    """An error of the launcher's machinery (a killed joblib worker, a lost SLURM job), not of a job's code."""
    return type(error).__module__.split(".")[0] in ("joblib", "loky", "submitit")


def _stopped_by(error: BaseException | None) -> str:
    """Why a job still ``running`` when the sweep ended has no result."""
    if error is None:
        return "stopped without a result"
    if type(error).__name__ == "TerminatedWorkerError":
        return ("TerminatedWorkerError: its joblib worker was killed (e.g. by the OS, out of memory), or another "
                "job's was and joblib stopped every job running then")  # fmt: skip
    return _first_line(error)


def _identity(config: DictConfig) -> dict[str, Any]:
    return {
        "num": int(config.hydra.job.get("num") or 0),
        "name": str(config.hydra.sweep.subdir),  # the job's dir and TensorBoard run name
        "overrides": list(config.hydra.overrides.task),
        "objective": str(config.get("objective", "")),
        "dir": str(config.hydra.runtime.output_dir),
    }


def _settle(sweep_dir: Path, error: BaseException | None, interrupted: bool) -> None:
    """Rewrites the records of jobs that were stopped (still ``running``) as interrupted or failed."""
    for record in jobs.read_records(sweep_dir):
        if record.get("status") != jobs.RUNNING:
            continue
        if interrupted:
            record["status"] = jobs.INTERRUPTED
        else:
            record["status"] = jobs.FAILED
            record["error"] = _stopped_by(error)
        jobs.write_record(sweep_dir, record)


def _job_line(result: dict[str, Any]) -> str:
    overrides = result.get("name") or "(defaults)"
    status = result.get("status")
    if status == jobs.FAILED:
        outcome = f"FAILED {result.get('error')}"
    elif status == jobs.COMPLETED:
        value = _number(result.get("value"))
        outcome = f"{result['objective']}={value:.4g}" if value is not None else f"{result['objective']}=n/a"
    else:
        return f"#{result['num']} {overrides}"
    seconds = result.get("seconds")
    return f"#{result['num']} {overrides}  {outcome}" + (f"  job time {seconds:.1f} s" if seconds is not None else "")


def _same_command(sweep_dir: Path) -> str:
    """This command line, with its ``hydra.sweep.dir`` (added when the default, timestamped one was used)."""
    args = [a for a in sys.argv[1:] if not a.startswith("hydra.sweep.dir=")]
    return shlex.join([Path(sys.executable).name, sys.argv[0], *args, f"hydra.sweep.dir={sweep_dir}"])


def _write_best(sweep_dir: Path, best: dict[str, Any], direction: str) -> Path:
    """``<sweep>/best_job.yaml``: the best job's overrides, objective and the whole config it ran with."""
    config_path = Path(best["dir"]) / ".hydra" / "config.yaml"
    entry = {key: best[key] for key in ("overrides", "objective", "value", "dir")}
    entry["direction"] = direction
    entry["config"] = OmegaConf.load(config_path) if config_path.is_file() else None
    path = sweep_dir / BEST_FILE
    OmegaConf.save(OmegaConf.create(entry), path)
    return path


def _report_lines(sweep_dir: Path, objective: str) -> list[str]:
    """Writes the comparison report; a failure to do so is printed, never raised (the jobs' results stand)."""
    try:
        from lrsched_pl.report import METRICS, write_report

        report = write_report(sweep_dir, metric=objective if objective in METRICS else "val/loss", console=False)
    except Exception as error:  # noqa: BLE001 - the sweep is done; say why the report is missing, do not fail it
        return [f"Report: not written ({_first_line(error)}); try: python -m lrsched_pl.report {sweep_dir}"]
    lines = [f"Report: {report.markdown} (table: {report.csv}; figures: {', '.join(p.name for p in report.figures)})"]
    return lines + [f"  missing from the report: {entry}" for entry in report.missing]
