"""Checkpoints written atomically in their own folder, with a checksum inside, and a failed save an error.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction: a temp file under ``$TMPDIR`` that is moved
into place, which is a copy when the run directory is on another file system (a kill or a full disk then leaves a
truncated ``last.ckpt``, and temp files leak into ``/tmp``); and it drops a ``PermissionError`` silently.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem
from typing_extensions import override

from lrsched_pl.checkpoint import CHECKSUM, digest


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temp file in the checkpoint's own folder, fsyncs it, and renames it into place.

    A reader sees the old file or the new one, never a part: a kill or a full disk during a save leaves the previous
    checkpoint (e.g. ``last.ckpt``) as it was, and nothing is written under ``$TMPDIR``. The archive carries a SHA-256
    of its other members (:data:`lrsched_pl.checkpoint.CHECKSUM`), which :func:`lrsched_pl.checkpoint.check_file`
    verifies before a resume. A failed save (no permission, read-only or full file system) raises, naming the file.
    A Ctrl+C during the write takes effect right after it. Remote paths (``s3://...``) are left to Lightning.

    A save killed outright (SIGKILL, the OOM killer, a node lost) leaves its hidden temp file
    (``.last.ckpt.<random>.tmp``); the first save of the next run into that folder removes every such file older than
    that run (:func:`remove_stale_temp_files`).

    Use: ``Trainer(plugins=[AtomicCheckpointIO()])``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._started = time.time()  # temp files last written before this are no live save's
        self._swept: set[Path] = set()

    @override
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        data = serialize(checkpoint)
        path = Path(path)
        if path.parent not in self._swept:
            self._swept.add(path.parent)
            remove_stale_temp_files(path.parent, self._started)
        try:
            with _sigint_deferred():
                write_atomic(data, path)
        except OSError as err:
            raise RuntimeError(
                f"Could not write the checkpoint {path}: {err.strerror or err}. Make `{path.parent}` writable (or free "
                "space there), or write checkpoints elsewhere with `callbacks.model_checkpoint.dirpath=...`."
            ) from None

    @override
    def remove_checkpoint(self, path: Any) -> None:
        fs = get_filesystem(path)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def serialize(checkpoint: dict[str, Any]) -> bytes:
    """``torch.save`` bytes of ``checkpoint`` with a :data:`~lrsched_pl.checkpoint.CHECKSUM` member appended."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with zipfile.ZipFile(buffer, "a") as archive:
        prefix = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{prefix}/{CHECKSUM}", digest(archive))
    return buffer.getvalue()


# mkstemp's name: prefix, 8 characters of [a-z0-9_], suffix
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def write_atomic(data: bytes, path: Path) -> None:
    """Writes ``data`` to ``path`` through a temp file in the same folder: write, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 would hide checkpoints from the group
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power loss once the folder is synced
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def remove_stale_temp_files(folder: Path, before: float) -> list[Path]:
    """Removes the temp files of :func:`write_atomic` (``.<name>.<8 random characters>.tmp``) in ``folder`` last
    written before ``before`` (a time stamp): saves that a kill stopped. A temp file written since (a save in
    progress) is left alone, as is every other file.

    Returns:
        The files removed.
    """
    removed = []
    for path in folder.glob(".*.tmp") if folder.is_dir() else []:
        with contextlib.suppress(OSError):  # gone already, or not ours to remove: the save goes on either way
            if _TEMP_NAME.fullmatch(path.name) and path.is_file() and path.stat().st_mtime < before:
                path.unlink()
                removed.append(path)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Holds a SIGINT that arrives during the block and delivers it right after (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)
