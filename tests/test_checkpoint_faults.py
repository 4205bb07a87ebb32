"""Checkpoints that survive faults, and ``ckpt_path`` checked before training.

Faults: a kill in the middle of a save and a full disk, on a run directory on another file system than ``$TMPDIR``
(a tmpfs the test mounts, as root), leave the previous ``last.ckpt`` loadable and nothing in ``$TMPDIR``; a read-only
``checkpoints/`` fails the run loudly. Broken or tampered checkpoints (16 kinds) are refused with one line naming
``ckpt_path``, before training, leaving no run directory.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from lrsched_pl.checkpoint import CHECKSUM, CheckpointError, check_checkpoint, check_file
from lrsched_pl.run import train

SMALL = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]  # fmt: skip


def compose_run(*overrides: str, output_dir: Path):
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"output_dir={output_dir}", *overrides])


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A real ``last.ckpt``: the default run (SGD, no plateau), 3 steps."""
    out = tmp_path_factory.mktemp("good")
    train(compose_run(*SMALL, output_dir=out))
    return out / "checkpoints" / "last.ckpt"


def run_train(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})  # fmt: skip


# ---- the checkpoints the project writes ---------------------------------------------------------------------------


def test_every_checkpoint_carries_a_checksum_that_verifies(good: Path) -> None:
    with zipfile.ZipFile(good) as archive:
        assert any(name.endswith(f"/{CHECKSUM}") for name in archive.namelist())
    check_file(good)
    assert torch.load(good, weights_only=True)["global_step"] == 3
    assert not list(good.parent.glob(".*.tmp"))  # no temp file left beside it


# ---- broken and tampered checkpoints: one line, before training, no run directory ---------------------------------


def flip_bytes(data: bytes) -> bytes:
    """64 bytes inverted in the middle of the largest tensor record (the weights), the archive otherwise intact."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size // 2
    out = bytearray(data)
    out[start : start + 64] = bytes(b ^ 0xFF for b in out[start : start + 64])
    return bytes(out)


def rezip_with_stale_checksum(data: bytes) -> bytes:
    """One weight changed and the archive rewritten with valid CRCs, but the old SHA-256 kept: CRCs alone pass."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    target = max((i for i in source.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for info in source.infolist():
            member = source.read(info)
            if info.filename == target.filename:
                member = bytes([member[0] ^ 1]) + member[1:]
            archive.writestr(info, member)
    return out.getvalue()


def tampered(change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    """A checkpoint loaded, changed, and saved again with ``torch.save`` (valid archive, no checksum)."""

    def make(good: Path, path: Path) -> None:
        checkpoint = torch.load(good, weights_only=True)
        change(checkpoint)
        torch.save(checkpoint, path)

    return make


def plateau_state(**state: float) -> Callable[[dict], None]:
    def change(checkpoint: dict) -> None:
        base = {"best": math.inf, "num_bad": 0, "cooldown_counter": 0, "scale": 1.0}
        checkpoint["callbacks"]["ScheduleCallback"]["plateau"] = {**base, **state}

    return change


def set_base_lr(value: float) -> Callable[[dict], None]:
    def change(checkpoint: dict) -> None:
        checkpoint["callbacks"]["ScheduleCallback"]["base_lrs"] = [[value]]

    return change


def write(data: bytes | Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    return lambda good, path: path.write_bytes(data(good.read_bytes()) if callable(data) else data)


# name: (make the file from the good one, extra overrides, what the one line says); the first 8 need no Lightning
BROKEN = {
    "missing": (None, [], "no such file"),
    "a_folder": (lambda good, path: path.mkdir(), [], "is a folder, not a checkpoint file"),
    "zero_bytes": (write(b""), [], "is empty (0 bytes)"),
    "truncated": (write(lambda d: d[: len(d) // 2]), [], "not the zip archive `torch.save` writes"),
    "text_file": (write(b"epoch: 3\nlr: 0.1\n"), [], "not the zip archive `torch.save` writes"),
    "another_zip": (lambda good, path: zipfile.ZipFile(path, "w").writestr("notes.txt", "hi"), [],
                    "not a torch checkpoint"),
    "byte_flipped": (write(flip_bytes), [], "is damaged (Bad CRC-32"),
    "stale_checksum": (write(rezip_with_stale_checksum), [], "do not match the SHA-256 stored in it"),
    "plain_torch_dict": (lambda good, path: torch.save({"weight": torch.ones(3)}, path), [],
                         "is not a Lightning checkpoint"),
    "weights_only": (tampered(lambda c: c.pop("optimizer_states")), [], "holds no optimizer state"),
    "other_model": (None, ["model.hidden=[64]"], "does not fit the model: `net.0.weight` is [128, 64] in the"),
    "sgd_into_adam": (None, ["optimizer=adam"], "was written with another optimizer"),
    "nan_base_lr": (tampered(set_base_lr(math.nan)), [], "base LR of optimizer 0, param group 0 = nan"),
    "negative_base_lr": (tampered(set_base_lr(-0.1)), [], "base LR of optimizer 0, param group 0 = -0.1"),
    "negative_plateau_scale": (tampered(plateau_state(scale=-0.5)), ["plateau=val_loss"], "`scale` = -0.5"),
    "nan_plateau_best": (tampered(plateau_state(best=math.nan)), ["plateau=val_loss"], "`best` = nan"),
    "negative_plateau_counter": (tampered(plateau_state(num_bad=-2)), ["plateau=val_loss"], "`num_bad` = -2"),
}  # fmt: skip
# end to end in a subprocess: the kinds refused before Lightning is imported, and two after; the others in-process
SUBPROCESS = [*list(BROKEN)[:8], "sgd_into_adam", "nan_base_lr"]


def broken_file(good: Path, tmp_path: Path, kind: str) -> tuple[Path, list[str], str]:
    make, overrides, says = BROKEN[kind]
    path = tmp_path / f"{kind}.ckpt"
    if make is None:
        path = path if kind == "missing" else good
    else:
        make(good, path)
    return path, overrides, says


@pytest.mark.parametrize("kind", SUBPROCESS)
def test_a_broken_checkpoint_is_refused_with_one_line_and_no_run_dir(good: Path, tmp_path: Path, kind: str) -> None:
    path, overrides, says = broken_file(good, tmp_path, kind)
    run_dir = tmp_path / "run"
    proc = run_train(f"ckpt_path='{path}'", *overrides, *SMALL, f"hydra.run.dir={run_dir}")
    lines = [line for line in proc.stderr.splitlines() if "`ckpt_path=" in line]
    assert proc.returncode == 1 and len(lines) == 1 and says in lines[0], proc.stderr[-3000:]
    assert lines[0].count("ckpt_path") == 1 + lines[0].count("without `ckpt_path`")  # said once, not nested
    assert "Traceback" not in proc.stderr and "Epoch" not in proc.stdout + proc.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize("kind", [k for k in BROKEN if k not in SUBPROCESS])
def test_a_broken_checkpoint_is_refused_before_the_run_writes_anything(good: Path, tmp_path: Path, kind: str) -> None:
    path, overrides, says = broken_file(good, tmp_path, kind)
    out = tmp_path / "run"
    with pytest.raises(CheckpointError) as info:
        train(compose_run(f"ckpt_path='{path}'", *overrides, *SMALL, output_dir=out))
    message = str(info.value)
    assert message.startswith(f"`ckpt_path={path}`: ") and says in message and "\n" not in message, message
    assert message.count("`ckpt_path=") == 1
    assert not out.exists() or list(out.iterdir()) == []  # no events, hparams or checkpoints


def test_at_least_twelve_kinds_and_the_file_checks_need_no_lightning() -> None:
    assert len(BROKEN) >= 12
    code = "import lrsched_pl.checkpoint, sys; assert 'torch' not in sys.modules and 'lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_config_values_the_checkpoint_overrides_are_reported_in_one_warning(good: Path, tmp_path: Path) -> None:
    cfg = compose_run(*SMALL, "optimizer.lr=0.01", "optimizer.momentum=0.5", output_dir=tmp_path)
    from hydra.utils import instantiate

    model = instantiate(cfg.model, optimizer=instantiate(cfg.optimizer), _convert_="all")
    with pytest.warns(UserWarning) as caught:
        check_checkpoint(good, model, model.configure_optimizers(), seed=7)
    (message,) = [str(w.message) for w in caught if "checkpoint's values win" in str(w.message)]
    assert "the LR: [0.1] in the checkpoint, [0.01] from `optimizer.lr`" in message
    assert "`seed`: 42 in the checkpoint, 7 in the config" in message
    assert "`optimizer.momentum`: 0.9 in the checkpoint, 0.5 in the config" in message


def test_the_callback_refuses_a_state_that_cannot_be_resumed() -> None:
    from lrsched_pl import ReducePlateau, ScheduleCallback

    callback = ScheduleCallback(plateau=ReducePlateau())
    state = {"base_lrs": [[0.1]], "plateau": {"best": 1.0, "num_bad": 0, "cooldown_counter": 0, "scale": 0.0}}
    with pytest.raises(CheckpointError, match=r"`ckpt_path`: .*`scale` = 0.0, which must be in \(0, 1\]"):
        callback.load_state_dict(state)
    callback.load_state_dict({**state, "plateau": {**state["plateau"], "scale": 0.5}})
    assert callback.plateau.scale == 0.5


# ---- faults while saving ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (another file system than ``$TMPDIR``); root only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


SAVE_EVERY_STEP = ["callbacks.model_checkpoint.every_n_train_steps=1", "callbacks.model_checkpoint.save_top_k=0",
                   "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
                   "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]  # fmt: skip


def assert_loadable_at_step(path: Path, step: int) -> None:
    check_file(path)
    assert torch.load(path, weights_only=True)["global_step"] == step


def test_a_kill_in_the_middle_of_a_save_leaves_the_previous_last_ckpt(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    with tmpfs(tmp_path / "fs", "64m") as fs:
        run_dir = fs / "run"
        proc = subprocess.run(
            [sys.executable, "tests/kill_during_save.py", *SAVE_EVERY_STEP, f"hydra.run.dir={run_dir}"],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmpdir)},
        )  # fmt: skip
        assert proc.returncode == -signal.SIGXFSZ, proc.stderr[-3000:]  # killed by the kernel mid-write
        checkpoints = run_dir / "checkpoints"
        (partial,) = checkpoints.glob(".last.ckpt.*.tmp")  # the interrupted write, cut at half the size
        assert 0 < partial.stat().st_size < (checkpoints / "last.ckpt").stat().st_size
        assert_loadable_at_step(checkpoints / "last.ckpt", 1)
        # the run resumed in its directory: its first save removes the killed save's temp file
        train(compose_run(*SAVE_EVERY_STEP, f"ckpt_path={checkpoints / 'last.ckpt'}", output_dir=run_dir))
        assert not partial.exists() and not list(checkpoints.glob(".*.tmp"))
        assert_loadable_at_step(checkpoints / "last.ckpt", 4)
    assert list(tmpdir.iterdir()) == []


def test_the_first_save_removes_only_stale_temp_files_of_its_own_pattern(tmp_path: Path) -> None:
    from lrsched_pl.checkpoint_io import AtomicCheckpointIO

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    stale = [".last.ckpt.k2_9xq0a.tmp", ".epoch=0-step=3.ckpt.abcdefgh.tmp"]  # saves a kill stopped
    others = ["notes.tmp", ".last.ckpt.tmp", ".last.ckpt.toolong123.tmp", "epoch=0-step=3.ckpt"]  # not its pattern
    for name in stale + others:
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (1e9, 1e9))  # 2001
    io = AtomicCheckpointIO()
    time.sleep(0.05)  # past the file system's timestamp granularity
    (folder / ".last.ckpt.live0000.tmp").write_bytes(b"x")  # a save in progress, written after the run started
    io.save_checkpoint({"global_step": 7}, folder / "last.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == sorted([*others, ".last.ckpt.live0000.tmp", "last.ckpt"])
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 7


@pytest.mark.slow
def test_a_full_disk_fails_the_run_and_leaves_the_previous_last_ckpt(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    run_dir = tmp_path / "run"
    with tmpfs(run_dir / "checkpoints", "140k") as checkpoints:  # one ~97 KB checkpoint fits, not a second beside it
        proc = run_train(*SAVE_EVERY_STEP, f"hydra.run.dir={run_dir}", env={"TMPDIR": str(tmpdir)})
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert "Could not write the checkpoint" in proc.stderr and "No space left on device" in proc.stderr
        assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]  # the failed temp file removed
        assert_loadable_at_step(checkpoints / "last.ckpt", 1)
        assert "Run failed after step 2" in (run_dir / "train.log").read_text()
    assert list(tmpdir.iterdir()) == []


def test_a_read_only_checkpoints_folder_fails_loudly(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with tmpfs(run_dir / "checkpoints", "1m", read_only=True):
        proc = run_train(*SAVE_EVERY_STEP, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 1 and "Could not write the checkpoint" in proc.stderr, proc.stderr[-3000:]
    assert "Read-only file system" in proc.stderr
