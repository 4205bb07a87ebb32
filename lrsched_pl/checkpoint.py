"""Checks of ``ckpt_path`` before a resume: one line naming what is wrong and how to fix it, before any training.

:func:`check_file` needs no torch (run before Lightning is imported): the file exists, is a torch zip archive, and
every member passes its CRC and the SHA-256 that :class:`lrsched_pl.checkpoint_io.AtomicCheckpointIO` stores inside.
:func:`check_checkpoint` then loads it (``weights_only=True``) and checks it against the run: a Lightning checkpoint,
weights whose keys and shapes fit the model, optimizer states that fit the optimizer (count, param groups, kind),
and a :class:`~lrsched_pl.callback.ScheduleCallback` state that can be resumed (:func:`check_schedule_state`).
"""

from __future__ import annotations

import hashlib
import math
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

from hydra.errors import CompactHydraException

from lrsched_pl.errors import ConfigValueError

CHECKSUM = ".lrsched_pl_sha256"  # the member of the archive holding the SHA-256 of the others
_RETRY = "resume from another checkpoint (e.g. an earlier `epoch=...ckpt`) or start a new run without `ckpt_path`"


class CheckpointError(ConfigValueError, CompactHydraException):
    """A ``ckpt_path`` that cannot be resumed: ``value`` is the path, ``allowed`` says what is wrong and the fix.

    Also a Hydra ``CompactHydraException``, so ``train.py`` reports it as its one line, without a traceback.
    """

    def __init__(self, value: Any, allowed: str, key: str = "ckpt_path") -> None:
        super().__init__(key, value, allowed)

    def describe(self) -> str:
        where = f"`{self.key}`" if self.value is None else f"`{self.key}={self.value}`"
        return f"{where}: {self.allowed}"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.value, self.allowed, self.key)


def digest(archive: zipfile.ZipFile) -> str:
    """SHA-256 (hex) over the name and contents of every member but :data:`CHECKSUM`, in archive order.

    Reading each member also checks its CRC-32 (``zipfile.BadZipFile`` on a mismatch), which torch never does.
    """
    sha = hashlib.sha256()
    for info in archive.infolist():
        if info.filename.rsplit("/", 1)[-1] == CHECKSUM:
            continue
        sha.update(info.filename.encode() + b"\0")
        with archive.open(info) as member:
            for block in iter(lambda: member.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()


def check_file(path: str | Path | None) -> None:
    """Checks the file at ``path`` without loading it: exists, is a torch archive, intact.

    Raises:
        CheckpointError: Missing, a folder, empty, not a zip archive (truncated, text, an old torch format), a
            member failing its CRC, or contents that do not match the stored SHA-256.
    """
    if path is None:
        return
    p = Path(str(path))
    if not p.exists():
        example = "`outputs/runs/<run>/checkpoints/last.ckpt`"
        raise CheckpointError(path, f"no such file; give a checkpoint file, e.g. {example}")
    if not p.is_file():
        raise CheckpointError(path, "is a folder, not a checkpoint file; give a file in it, e.g. `<folder>/last.ckpt`")
    try:
        size = p.stat().st_size
        if size == 0:
            raise CheckpointError(path, f"is empty (0 bytes), as left by an interrupted save; {_RETRY}")
        if not zipfile.is_zipfile(p):
            raise CheckpointError(
                path, f"is not a checkpoint: not the zip archive `torch.save` writes (truncated or another kind of "
                f"file, {size} bytes); {_RETRY}",
            )  # fmt: skip
        with zipfile.ZipFile(p) as archive:
            names = archive.namelist()
            if not any(name.endswith("/data.pkl") for name in names):
                raise CheckpointError(path, f"is a zip archive but not a torch checkpoint (no `data.pkl`); {_RETRY}")
            stored = [name for name in names if name.rsplit("/", 1)[-1] == CHECKSUM]
            actual = digest(archive)
            if stored and archive.read(stored[0]).decode(errors="replace") != actual:
                raise CheckpointError(path, f"is damaged: its contents do not match the SHA-256 stored in it; {_RETRY}")
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as err:
        raise CheckpointError(path, f"is damaged ({err}); {_RETRY}") from None
    except OSError as err:
        raise CheckpointError(path, f"cannot be read ({err.strerror or err}); make it readable") from None


def check_checkpoint(path: str | Path, model: Any, optimizer: Any = None, seed: int | None = None) -> dict[str, Any]:
    """Loads the checkpoint at ``path`` and checks that this run can resume from it; returns it.

    Args:
        path: The ``ckpt_path``.
        model: The run's LightningModule (weights' keys and shapes are compared with the checkpoint's).
        optimizer: The run's optimizer, built on ``model``'s parameters (``None`` skips the optimizer checks).
        seed: The run's ``seed``, compared with the one the checkpoint's data loader shuffles with.

    Raises:
        CheckpointError: On the first thing that does not fit, with what to do.

    Warns:
        UserWarning: Once, listing the config values the checkpoint overrides (the optimizer's LR and
            hyperparameters restored from it), saying that the checkpoint's values win.
    """
    import torch

    check_file(path)
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch's unpickler raises many kinds; any of them means this file cannot be resumed
        first = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointError(path, f"cannot be loaded ({type(err).__name__}: {first[:200]}); {_RETRY}") from None
    lightning_keys = ("pytorch-lightning_version", "state_dict", "loops")
    if not isinstance(checkpoint, dict) or not all(key in checkpoint for key in lightning_keys):
        kind = f"dict with keys {sorted(checkpoint)[:5]}" if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            path, f"is not a Lightning checkpoint (a torch file holding a {kind}, without "
            f"{', '.join(f'`{k}`' for k in lightning_keys)}); give a checkpoint written by `trainer.fit`, or load "
            "plain weights in your own code",
        )  # fmt: skip
    _check_weights(path, checkpoint["state_dict"], model)
    schedule = (checkpoint.get("callbacks") or {}).get("ScheduleCallback")
    # keys the callback wrote (weight decay, momentum: a schedule's value in use, not the configured one)
    scheduled = set((schedule.get("base_values") or {}) if isinstance(schedule, dict) else ())
    if isinstance(schedule, dict) and "cycle_momentum=True" in str(schedule.get("schedule")):
        scheduled.add("momentum")
    overrides = _check_optimizer(path, checkpoint, optimizer, scheduled) if optimizer is not None else []
    if schedule is not None:
        try:
            check_schedule_state(schedule)
        except CheckpointError as err:
            raise CheckpointError(path, err.allowed) from None
        if optimizer is not None and schedule.get("base_lrs") is not None:
            now = [float(group["lr"]) for group in optimizer.param_groups]
            saved = [lr for group in schedule["base_lrs"] for lr in group]
            if len(now) == len(saved) and now != saved:
                overrides.insert(0, f"the LR: {saved} in the checkpoint, {now} from `optimizer.lr`")
    loaders = checkpoint["loops"].get("fit_loop", {}).get("state_dict", {}).get("combined_loader") or [{}]
    saved_seed = loaders[0].get("seed") if isinstance(loaders[0], dict) else None
    if seed is not None and saved_seed is not None and saved_seed != seed:
        overrides.append(f"`seed`: {saved_seed} in the checkpoint, {seed} in the config (data order and random states)")
    if overrides:
        warnings.warn(
            f"Resuming from {path}: the checkpoint's values win over this run's config for {'; '.join(overrides)}. "
            "Start a new run without `ckpt_path` to train with the config's values.",
            UserWarning,
            stacklevel=2,
        )
    return checkpoint


def check_schedule_state(state: Any) -> None:
    """Checks a :class:`~lrsched_pl.callback.ScheduleCallback` state from a checkpoint before it is restored.

    Base LRs must be finite and > 0; the plateau's ``scale`` in (0, 1], ``best`` a number (an infinity is its
    initial value), ``num_bad`` and ``cooldown_counter`` ints >= 0.

    Raises:
        CheckpointError: Naming the value (``ckpt_path`` unknown here: the caller adds it).
    """

    def refuse(what: str, value: Any, allowed: str) -> CheckpointError:
        return CheckpointError(
            None, f"the checkpoint's ScheduleCallback state has {what} = {value!r}, which must be {allowed}; it was "
            f"altered or written by a broken run: {_RETRY}",
        )  # fmt: skip

    if not isinstance(state, dict):
        raise refuse("its state", type(state).__name__, "a dict")
    base_lrs = state.get("base_lrs")
    if base_lrs is not None:
        if not isinstance(base_lrs, list) or not all(isinstance(group, list) for group in base_lrs):
            raise refuse("`base_lrs`", base_lrs, "a list of lists of LRs")
        for i, group in enumerate(base_lrs):
            for j, lr in enumerate(group):
                if not _real(lr) or not math.isfinite(lr) or lr <= 0:
                    raise refuse(f"the base LR of optimizer {i}, param group {j}", lr, "a finite number > 0")
    base_values = state.get("base_values") or {}
    if not isinstance(base_values, dict):
        raise refuse("`base_values`", base_values, "a dict: param-group key -> lists of values")
    for key, rows in base_values.items():
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise refuse(f"`base_values[{key!r}]`", rows, "a list of lists of values")
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if v is not None and (not _real(v) or not math.isfinite(v) or v < 0):
                    raise refuse(f"the base {key} of optimizer {i}, param group {j}", v, "a finite number >= 0")
    lengths = state.get("lengths")
    if lengths is not None and not (isinstance(lengths, dict) and all(
            v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in lengths.values())):
        raise refuse("`lengths`", lengths, "a dict: interval -> run length (an int >= 0, or None)")
    for warp in state.get("warps") or []:
        if not (isinstance(warp, (list, tuple)) and len(warp) == 4 and warp[0] in ("step", "epoch")
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in warp[1:])):
            raise refuse("a rebind in `warps`", warp, "[interval, t0, old length, new length] with ints >= 0")
    plateau = state.get("plateau")
    if plateau is None:
        return
    if not isinstance(plateau, dict):
        raise refuse("`plateau`", plateau, "a dict")
    scale = plateau.get("scale")
    if not _real(scale) or not 0 < scale <= 1:
        raise refuse("the plateau's `scale`", scale, "in (0, 1]")
    best = plateau.get("best")
    if not _real(best) or math.isnan(best):
        raise refuse("the plateau's `best`", best, "a number (an infinity before the first validation)")
    for key in ("num_bad", "cooldown_counter"):
        value = plateau.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise refuse(f"the plateau's `{key}`", value, "an int >= 0")


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_weights(path: Any, saved: Any, model: Any) -> None:
    """The checkpoint's weights must have exactly the model's keys and shapes (Lightning loads them strictly)."""
    if not isinstance(saved, dict):
        raise CheckpointError(path, f"has a `state_dict` that is a {type(saved).__name__}, not weights; {_RETRY}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    shapes = [
        f"`{k}` is {list(saved[k].shape)} in the checkpoint, {list(v.shape)} in the model"
        for k, v in expected.items()
        if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(v.shape)
    ]
    problems = shapes + [f"`{k}` is missing from the checkpoint" for k in missing]
    problems += [f"the checkpoint has `{k}`, which the model has not" for k in unexpected]
    if problems:
        more = f" (and {len(problems) - 2} more)" if len(problems) > 2 else ""
        raise CheckpointError(
            path, f"does not fit the model: {'; '.join(problems[:2])}{more}; resume with the `model` config the "
            "checkpoint was written with, or start a new run without `ckpt_path`",
        )  # fmt: skip


def _check_optimizer(path: Any, checkpoint: dict[str, Any], optimizer: Any, scheduled: set[str] = frozenset()) -> list[str]:
    """The checkpoint's optimizer state must fit ``optimizer``; returns the hyperparameters it overrides (but those
    a schedule wrote: ``scheduled``, e.g. ``weight_decay``, ``momentum``)."""
    states = checkpoint.get("optimizer_states")
    if not states:
        raise CheckpointError(
            path, "holds no optimizer state (written with `save_weights_only=true`?), so training cannot resume from "
            "it; load its weights in your own code, or resume from a full checkpoint",
        )  # fmt: skip
    name = type(optimizer).__name__
    if len(states) != 1:
        raise CheckpointError(path, f"holds {len(states)} optimizer states, this run has 1 ({name}); {_RETRY}")
    saved_groups = states[0].get("param_groups", []) if isinstance(states[0], dict) else []
    groups = optimizer.param_groups
    fix = f"resume with the `optimizer` config the checkpoint was written with, or start a new run without `ckpt_path`"
    if len(saved_groups) != len(groups):
        raise CheckpointError(
            path, f"has {len(saved_groups)} optimizer param groups, this run's {name} has {len(groups)}; {fix}"
        )
    ignore = {"params", "lr", "initial_lr"}
    quiet = {"foreach", *scheduled, *(("betas",) if "momentum" in scheduled else ())}  # not config values, or scheduled
    overrides = []
    for i, (saved, group) in enumerate(zip(saved_groups, groups)):
        ours, theirs = set(group) - ignore, set(saved) - ignore
        if ours != theirs:
            raise CheckpointError(
                path, f"was written with another optimizer: its param groups have {sorted(theirs - ours)} where this "
                f"run's {name} has {sorted(ours - theirs)}; {fix}",
            )  # fmt: skip
        if len(saved.get("params", [])) != len(group["params"]):
            raise CheckpointError(
                path, f"has {len(saved['params'])} parameters in optimizer param group {i}, this run's {name} has "
                f"{len(group['params'])}; {fix}",
            )  # fmt: skip
        overrides += [
            f"`optimizer.{k}`: {saved[k]!r} in the checkpoint, {group[k]!r} in the config"
            for k in sorted(ours)
            if k not in quiet and saved[k] != group[k] and f"`optimizer.{k}`" not in " ".join(overrides)
        ]
    return overrides
