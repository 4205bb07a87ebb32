"""``python tests/kill_during_save.py <train.py args>``: ``train.py``, killed by the kernel in the middle of writing its
second ``last.ckpt``.

An audit hook watches files opened for writing; at the second one whose name contains ``last.ckpt`` it caps the
process's file size (``RLIMIT_FSIZE``) at half the first checkpoint's size and restores SIGXFSZ's default action
(Python ignores it), so the write that crosses the cap kills the process with SIGXFSZ, part-way through the file:
with Lightning's own ``TorchCheckpointIO`` that is ``last.ckpt`` itself (copied over from ``$TMPDIR`` when the run
directory is on another file system), here the temp file beside it.
"""

from __future__ import annotations

import os
import resource
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
opened: list[str] = []


def hook(event: str, args: tuple) -> None:
    if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path, mode, flags = os.fsdecode(args[0]), args[1], args[2]
    if isinstance(mode, str):
        writing = any(c in mode for c in "wa+x")
    else:
        writing = bool(flags & (os.O_WRONLY | os.O_RDWR))
    if not writing or "last.ckpt" not in os.path.basename(path):
        return
    opened.append(path)
    if len(opened) == 2:
        first = Path(opened[0]).parent / "last.ckpt"
        resource.setrlimit(resource.RLIMIT_FSIZE, (first.stat().st_size // 2, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


sys.addaudithook(hook)
sys.argv = [str(ROOT / "train.py"), *sys.argv[1:]]
sys.path.insert(0, str(ROOT))
runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
