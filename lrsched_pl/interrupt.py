"""SIGTERM and SIGINT end a run with exit code 143 / 130 (128 + the signal), after its last checkpoint is written.

Lightning turns SIGTERM into a stop at the next batch boundary (``SIGTERMException``, a bare ``SystemExit``: exit code
0, which a scheduler or script reads as success), and Ctrl+C into an immediate ``KeyboardInterrupt`` that can land in
the middle of a batch. Here, while the Trainer fits, a first SIGINT takes Lightning's SIGTERM path (the batch ends,
``ModelCheckpoint(save_on_exception=True)`` saves a checkpoint that resumes exactly), a second one interrupts at once;
either way the process then exits with 130 (SIGINT) or 143 (SIGTERM). Before fitting (imports, set-up) a signal is
recorded and stops the run at the next safe point (:func:`stop_if_received`, when fitting starts, before the first
step), never inside an import, which would leave modules half-imported (numpy, measured: the process then
failed with an ``AttributeError`` instead of exiting 143); a second Ctrl+C stops at once. :func:`exit_on_signals`
leaves no run directory behind.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class Interrupted(KeyboardInterrupt):
    """A run stopped by ``signum`` outside the Trainer's fit (which stops at a batch boundary instead)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {SIGNALS.get(signum, signum)}")
        self.signum = signum


class _State:
    received: int | None = None  # the first SIGINT/SIGTERM of this run
    fitting = False


def received() -> int | None:
    """The first SIGINT or SIGTERM this process received since :func:`exit_on_signals` started, else ``None``."""
    return _State.received


def exit_code(signum: int) -> int:
    """The shell's convention: ``128 + signum`` (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum)


def _handler(signum: int, frame: Any) -> None:
    first = _State.received is None
    if first:
        _State.received = signum
    if not _State.fitting:
        if signum == signal.SIGINT and not first:
            raise Interrupted(signum)  # a second Ctrl+C: at once
        return  # stopped at the next safe point (stop_if_received), never inside an import
    if signum == signal.SIGINT:
        if not first:
            raise KeyboardInterrupt  # a second Ctrl+C: at once, as Lightning would
        signal.raise_signal(signal.SIGTERM)  # Lightning's handler (which calls this one too) ends the batch first
    # SIGTERM while fitting: Lightning's own handler, registered in front of this one, stops at the batch boundary


def stop_if_received() -> None:
    """A safe point: raises :class:`Interrupted` if a signal arrived while the run was setting up.

    Raises:
        Interrupted: For the first SIGINT/SIGTERM received.
    """
    if _State.received is not None:
        raise Interrupted(_State.received)


@contextlib.contextmanager
def fitting() -> Iterator[None]:
    """Around ``trainer.fit``: signals are left to Lightning's graceful stop (and recorded for the exit code)."""
    _State.fitting = True
    try:
        stop_if_received()  # arrived during the set-up: stop before the first step
        yield
    finally:
        _State.fitting = False


def exit_on_signals(main: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates a Hydra task function: SIGINT/SIGTERM end it with ``SystemExit(130 / 143)``.

    The task removes what a run stopped before its first step wrote (see :func:`lrsched_pl.run.train`); a run
    directory left holding only Hydra's files is removed here (:func:`lrsched_pl.config.discard_unstarted_run`).
    """

    @functools.wraps(main)
    def wrapper(cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig

        from lrsched_pl.config import discard_unstarted_run

        _State.received, _State.fitting = None, False
        if threading.current_thread() is not threading.main_thread():  # a launcher's thread: signals are not ours
            return main(cfg)
        previous = {signum: signal.signal(signum, _handler) for signum in SIGNALS}
        try:
            result = main(cfg)
            stop_if_received()  # a signal after the fit, or during a set-up that never reached it: still a stop
            return result
        except (KeyboardInterrupt, SystemExit) as stop:
            signum = _State.received
            if signum is None or (isinstance(stop, SystemExit) and stop.code not in (None, 0, 1)):
                raise
            discard_unstarted_run(HydraConfig.get().runtime.output_dir)
            raise SystemExit(exit_code(signum)) from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    return wrapper
