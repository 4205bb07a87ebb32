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

This module is the Hydra callback; the checks before the first job are :mod:`lrsched_pl.sweep_checks`, the job
records :mod:`lrsched_pl.sweep_records`, the summary :mod:`lrsched_pl.sweep_summary` and the continuing of a sweep
:mod:`lrsched_pl.sweep_continue`.
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from lrsched_pl import jobs
from lrsched_pl.errors import ConfigValueError, full_error
from lrsched_pl.rundir import rank_zero
from lrsched_pl.sweep_checks import (
    DEFAULT_MODEL_METRICS,
    Job,
    SweepRefused,
    check_jobs,
    check_objective,
    check_sweep_dir,
    expand_grid,
    grid_entry,
)
from lrsched_pl.sweep_continue import Kept, continue_job
from lrsched_pl.sweep_records import end_record, settle, start_record
from lrsched_pl.sweep_summary import BEST_FILE, best_result, job_line, summary

__all__ = [  # what train.yaml (SweepSummary), lrsched_pl.app (continue_job) and the tests import from here
    "BEST_FILE", "DEFAULT_MODEL_METRICS", "SIGNAL_EXIT", "Job", "Kept", "SweepInterrupted", "SweepRefused",
    "SweepSummary", "best_result", "check_jobs", "check_objective", "check_sweep_dir", "continue_job", "expand_grid",
]  # fmt: skip

log = logging.getLogger(__name__)

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}  # the shell's 128 + signal number


class SweepInterrupted(BaseException):
    """A signal stopped the sweep in the process that launched it (not an ``Exception``: nothing may catch it)."""


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
            jobs.write_grid(sweep_dir, [grid_entry(job) for job in self._grid])
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
        self._kept = start_record(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Records the job as ``completed`` (with its objective value) or ``failed`` (with its error) and prints it."""
        if config.hydra.mode != RunMode.MULTIRUN or not rank_zero():  # rank 0 speaks for a DDP or SLURM job
            return
        if self._kept is not None:
            log.info(job_line(self._kept) + "  (finished before: kept)")
            return
        record = end_record(config, job_return, time.perf_counter() - self._started)
        log.info(job_line(record))
        jobs.write_record(Path(config.hydra.sweep.dir), record)

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
        settle(sweep_dir, error, interrupted)
        results = jobs.statuses(sweep_dir)
        if not any(r["status"] != jobs.NOT_STARTED for r in results):
            return False
        head = f"Sweep interrupted ({signal.Signals(self._signal).name})" if interrupted and self._signal else (
            "Sweep interrupted" if interrupted else "Sweep finished")  # fmt: skip
        log.info(summary(config, results, head, report=self.report, continuable=self._grid is not None))
        return True


def _launcher_error(error: BaseException) -> bool:
    """An error of the launcher's machinery (a killed joblib worker, a lost SLURM job), not of a job's code."""
    return type(error).__module__.split(".")[0] in ("joblib", "loky", "submitit")
