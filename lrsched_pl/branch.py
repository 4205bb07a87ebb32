"""``lrsched-branch``: a cooldown branch from a checkpoint of a run, as a new run (or a sweep of branches).

    lrsched-branch outputs/runs/<date>/<run> cooldown.steps=100                 # from checkpoints/last.ckpt
    lrsched-branch <run> --ckpt step=300 cooldown.steps=100 cooldown.shape=cosine cooldown.min_lr=1e-4
    lrsched-branch <run> cooldown.fraction=0.2          # the cooldown is the last 20 % of the finished run
    lrsched-branch <run> -m cooldown.steps=50,100,200   # one branch per length, one sweep, a report comparing them

The branch trains what its parent trained: the parent's own overrides (``<run>/.hydra/overrides.yaml``) with
``ckpt_path`` set to the checkpoint, :class:`~lrsched_pl.cooldown.CooldownCallback` added after the schedule
(``+callbacks.cooldown``) and an open length (``trainer.max_epochs=-1 trainer.max_steps=-1``: the cooldown ends the
branch), through the usual training command (:mod:`lrsched_pl.app`, in this process). Further overrides are applied
on top (a key the parent set is replaced). The LR goes from its value in the checkpoint (step ``t0``) to ``min_lr``
at ``t0 + steps``::

    lr(t) = min_lr + (lr_t0 - min_lr) * shape((t - t0) / steps),   shape: linear 1 - p, cosine (1 + cos(pi p)) / 2,
                                                                           1-sqrt 1 - sqrt(p)

The cooldown's length is one of ``cooldown.steps`` (optimizer steps), ``cooldown.until`` (the step it ends at, the
finished run's total) or ``cooldown.fraction`` (the share of the finished run it takes: ``steps = round(fraction *
t0 / (1 - fraction))``, Hägele et al. 2024 use 0.1-0.2). Each ``cooldown.*`` key takes Hydra's sweep syntax with
``-m``.

Where it goes: next to the parent, ``<parent>_cooldown-<shape>-<steps>`` (``-min<min_lr>`` added when > 0); a sweep
in ``<parent>_cooldowns-<time>-<4 hex>/cooldown-<shape>-<steps>``, whose report
(:mod:`lrsched_pl.branch_report`) compares the branches. A parent that is a job of a sweep (``<sweep>/<job>``) gets
them next to its sweep, named ``<sweep>_<job>_cooldown-...``, so the parent's sweep is not changed either. The
branch's TensorBoard curves start at the parent's step (Lightning restores the step; TensorBoard's ``purge_step``).

Bad input (no such run, no checkpoint, a length that ends before the checkpoint, an unknown shape) is refused in one
line before Lightning is imported.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from lrsched_pl.errors import ConfigValueError, UnknownKeyError, check_choice, check_float, check_int, full_error
from lrsched_pl.rundir import CHECKPOINTS, LAST_CHECKPOINT, holds_run, holds_sweep, run_id

TARGET = "lrsched_pl.cooldown.CooldownCallback"
SHAPES = ("linear", "cosine", "1-sqrt")
LENGTHS = ("steps", "until", "fraction")  # one of them gives the cooldown's length
KEYS = (*LENGTHS, "shape", "min_lr")
DEFAULTS: dict[str, Any] = {"shape": "1-sqrt", "min_lr": 0.0}
# The parent's overrides the branch sets itself (or must not repeat): its checkpoint, its length, a range test that
# would run again (the LR comes from the checkpoint), an Optuna search's sweeper (its sampled values stay).
_REPLACED = ("ckpt_path", "trainer.max_steps", "trainer.max_epochs", "lr_find", "hparams_search", "callbacks.cooldown")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrsched-branch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", metavar="RUN_DIR", help="the parent run's directory (with .hydra/ and checkpoints/)")
    parser.add_argument("--ckpt", default="last", metavar="NAME",
                        help="the checkpoint in RUN_DIR/checkpoints to branch from (step=300, step=300.ckpt), or a "
                        "path (default: last)")  # fmt: skip
    parser.add_argument("-m", "--multirun", action="store_true", help="a sweep: one branch per cooldown.* value")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help=f"cooldown.{{{','.join(KEYS)}}}=..., and any override of the training command")
    return parser


def checkpoint_of(run: Path, ckpt: str) -> Path:
    """The checkpoint file ``ckpt`` names: a file of ``<run>/checkpoints`` (``.ckpt`` may be left out), or a path.

    Raises:
        ConfigValueError: Naming ``--ckpt`` and the run's checkpoints, or saying that the run has none.
    """
    folder = run / CHECKPOINTS
    available = sorted(p.name for p in folder.glob("*.ckpt")) if folder.is_dir() else []
    if not available and "/" not in ckpt:
        raise ConfigValueError("--ckpt", ckpt, f"a checkpoint of the run, but {folder} holds none (the run saves "
                               "them with callbacks.model_checkpoint; every_n_train_steps=N for mid-run ones)")
    name = LAST_CHECKPOINT if ckpt == "last" else ckpt if ckpt.endswith(".ckpt") else f"{ckpt}.ckpt"
    path = folder / name if "/" not in ckpt else Path(ckpt)
    if not path.is_file():
        raise ConfigValueError("--ckpt", ckpt, f"a checkpoint of the run: one of {', '.join(available)} (or a path)")
    return path


def read_checkpoint(path: Path) -> tuple[int, list[float]]:
    """``(global step, LR of every param group)`` of a Lightning checkpoint, read with torch (no Lightning)."""
    from lrsched_pl.checkpoint import CheckpointError, check_file

    check_file(path)
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        step = int(checkpoint["global_step"])
        lrs = [float(g["lr"]) for s in checkpoint.get("optimizer_states") or [] for g in s["param_groups"]]
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the one line
        raise CheckpointError(path, f"cannot be read as a Lightning checkpoint ({type(err).__name__}: {err})") from None
    return step, lrs


def _values(override: Any) -> list[Any]:
    """The values of one ``cooldown.*`` override: one, or every value of a choice or range sweep."""
    if not override.is_sweep_override():
        return [override.value()]
    if override.value_type.name == "INTERVAL_SWEEP":
        raise ConfigValueError(override.get_key_element(), override.input_line.split("=", 1)[1],
                               "one value or a list of values (a choice or range sweep), not an interval")
    return list(override.sweep_iterator())


def cooldown_values(overrides: list[Any], multirun: bool) -> dict[str, list[Any]]:
    """Every ``cooldown.*`` key with its values, checked; the defaults for ``shape`` and ``min_lr``.

    Raises:
        ConfigValueError: An unknown key, a sweep without ``-m``, a value out of range, or not exactly one of
            ``steps``, ``until``, ``fraction``.
    """
    found: dict[str, list[Any]] = {}
    for override in overrides:
        key = override.key_or_group.removeprefix("cooldown.")
        value = override.input_line.split("=", 1)[-1]
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean `cooldown.{close[0]}`?)" if close else ""
            raise UnknownKeyError(f"cooldown.{key}", value, ", ".join(KEYS) + hint)
        values = _values(override)
        if len(values) > 1 and not multirun:
            raise ConfigValueError(f"cooldown.{key}", value, "one value, or several with -m (a sweep of branches)")
        for v in values:
            if key in ("steps", "until"):
                check_int(f"cooldown.{key}", v, low=1)
            elif key == "fraction":
                check_float("cooldown.fraction", v, low=0.0, high=1.0, low_open=True, high_open=True)
            elif key == "shape":
                check_choice("cooldown.shape", v, SHAPES)
            else:
                check_float("cooldown.min_lr", v, low=0.0)
        found[key] = values
    lengths = [k for k in LENGTHS if k in found]
    if len(lengths) != 1:
        given = " and ".join(f"cooldown.{k}" for k in lengths) or "none"
        raise ConfigValueError("cooldown.steps", given, "set, or cooldown.until or cooldown.fraction: exactly one of "
                               "them gives the cooldown's length (e.g. cooldown.steps=100)")  # fmt: skip
    return {**{k: [v] for k, v in DEFAULTS.items()}, **found}


def cooldown_steps(values: dict[str, list[Any]], t0: int) -> list[int]:
    """The cooldown lengths in optimizer steps, from ``steps``, ``until`` (> ``t0``) or ``fraction``, in order."""
    if "steps" in values:
        steps = list(values["steps"])
    elif "until" in values:
        for until in values["until"]:
            if until <= t0:
                raise ConfigValueError("cooldown.until", until, f"> {t0}, the checkpoint's step (the branch starts "
                                       "there; or give the cooldown's length, cooldown.steps=N)")  # fmt: skip
        steps = [until - t0 for until in values["until"]]
    else:
        if t0 == 0:
            raise ConfigValueError("cooldown.fraction", values["fraction"][0], "used with a checkpoint after step 0 "
                                   "(a fraction of the finished run; give cooldown.steps=N from step 0)")
        steps = [max(1, round(f * t0 / (1 - f))) for f in values["fraction"]]
    return list(dict.fromkeys(steps))


def _quote(value: str) -> str:
    """A Hydra override value that may hold ``=``, spaces, brackets or ``${``: single-quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _key(override: Any) -> str:
    return str(override.key_or_group)


def _replaced(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in _REPLACED)


def home(parent: Path) -> tuple[Path, str]:
    """``(folder, name)`` the branches of ``parent`` are named from: beside the parent, or beside its sweep."""
    parent = parent.resolve()
    if holds_sweep(parent.parent):
        return parent.parent.parent, f"{parent.parent.name}_{parent.name}"
    return parent.parent, parent.name


def branch_name(shape: str, steps: int | str, min_lr: float | str = 0.0) -> str:
    """``cooldown-<shape>-<steps>``, with ``-min<min_lr>`` when ``min_lr`` is not 0."""
    return f"cooldown-{shape}-{steps}" + ("" if min_lr in (0, 0.0) else f"-min{min_lr}")


def plan(run: str | Path, ckpt: str, overrides: Sequence[str], multirun: bool) -> list[str]:
    """The training command's arguments for the branch(es) of ``run`` at ``ckpt``; checks everything first.

    Args:
        run: The parent run's directory.
        ckpt: ``--ckpt``: a file name in ``<run>/checkpoints`` (``last``, ``step=300``), or a path.
        overrides: ``cooldown.*`` keys and any overrides of the training command.
        multirun: A sweep of branches (``-m``).

    Returns:
        Hydra's command line (``-m`` first for a sweep): the parent's overrides, the user's, the checkpoint, the
        cooldown callback, the length and the directory.

    Raises:
        ConfigValueError: With the one line that says what to fix.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parent = Path(run)
    listed = parent / ".hydra" / "overrides.yaml"
    if not listed.is_file():
        what = "no such directory" if not parent.is_dir() else "it has no .hydra/overrides.yaml"
        raise ConfigValueError("RUN_DIR", str(run), f"a run directory of the training command ({what}), e.g. "
                               "outputs/runs/<date>/<run>")  # fmt: skip
    path = checkpoint_of(parent, ckpt).resolve()
    parser = OverridesParser.create()
    try:
        mine = parser.parse_overrides(list(overrides))
        theirs = parser.parse_overrides([str(o) for o in yaml.safe_load(listed.read_text()) or []])
    except OverrideParseException as err:
        raise ConfigValueError("overrides", " ".join(overrides), f"Hydra overrides ({str(err).splitlines()[0]})")
    for override in mine:
        if _replaced(_key(override)):
            raise ConfigValueError(_key(override), override.input_line.split("=", 1)[-1], "left to lrsched-branch "
                                   "(--ckpt names the checkpoint, cooldown.* the cooldown and so the run's length; "
                                   "a branch runs no LR range test or search)")  # fmt: skip
    cooldown = [o for o in mine if _key(o).startswith("cooldown.")]
    values = cooldown_values(cooldown, multirun)
    t0, lrs = read_checkpoint(path)
    for min_lr in values["min_lr"]:
        if lrs and min_lr > min(lrs):
            raise ConfigValueError("cooldown.min_lr", min_lr, f"at most the LR at the checkpoint ({min(lrs):g})")
    steps = cooldown_steps(values, t0)

    given = {_key(o) for o in mine}
    args = [o.input_line for o in theirs if not _replaced(_key(o)) and _key(o) not in given]
    if any(_key(o) == "hparams_search" for o in theirs):  # its defaults chose groups: keep the parent's choices
        args += _group_choices(parent, {_key(o) for o in [*theirs, *mine]})
    args += [o.input_line for o in mine if not _key(o).startswith("cooldown.")]
    args += [f"ckpt_path={_quote(str(path))}", "trainer.max_epochs=-1", "trainer.max_steps=-1",
             f"+callbacks.cooldown._target_={TARGET}", f"+callbacks.cooldown.steps={','.join(map(str, steps))}",
             f"+callbacks.cooldown.shape={','.join(map(str, values['shape']))}",
             f"+callbacks.cooldown.min_lr={','.join(map(str, values['min_lr']))}"]  # fmt: skip
    if any(_key(o) == "experiment" for o in theirs):  # an experiment's own sweep is not the branch's
        args += ["hydra.sweeper.params=null", f"hydra.mode={'MULTIRUN' if multirun else 'RUN'}"]
    return (["-m"] if multirun else []) + args + _where(parent, values, steps, given, multirun)


def _where(parent: Path, values: dict[str, list[Any]], steps: list[int], given: set[str], multirun: bool) -> list[str]:
    """``hydra.run.dir`` of a branch, or ``hydra.sweep.dir`` and ``subdir`` of a sweep of them, unless given."""
    folder, name = home(parent)
    if multirun:
        args = []
        if "hydra.sweep.dir" not in given:
            args.append(f"hydra.sweep.dir={_quote(str(folder / f'{name}_cooldowns-{run_id()}'))}")
        if "hydra.sweep.subdir" not in given:  # resolved in each job
            min_lr = 0.0 if values["min_lr"] == [0.0] else "${callbacks.cooldown.min_lr}"
            subdir = branch_name("${callbacks.cooldown.shape}", "${callbacks.cooldown.steps}", min_lr)
            args.append(f"hydra.sweep.subdir={_quote(subdir)}")
        return args
    if "hydra.run.dir" in given:
        return []
    branch = branch_name(values["shape"][0], steps[0], values["min_lr"][0])
    target = folder / f"{name}_{branch}"
    if holds_run(target):
        raise ConfigValueError("cooldown", branch, f"a branch not made yet: {target} exists (delete it to make it "
                               "again)")  # fmt: skip
    return [f"hydra.run.dir={_quote(str(target))}"]


def _group_choices(parent: Path, overridden: set[str]) -> list[str]:
    """``group=option`` for each config group the parent's run chose (``.hydra/hydra.yaml``) and no override sets."""
    path = parent / ".hydra" / "hydra.yaml"
    choices = ((yaml.safe_load(path.read_text()) or {}).get("hydra") or {}).get("runtime", {}).get("choices", {})
    skip = overridden | {"hparams_search", "experiment"}
    return [f"{group}={option}" for group, option in (choices or {}).items()
            if option is not None and not group.startswith("hydra/") and group not in skip]  # fmt: skip


def _training_command() -> str:
    """What ``sys.argv[0]`` becomes for Hydra: ``train.py`` in a checkout, else the package's ``__main__.py`` (a sweep
    prints it in the command that continues it)."""
    package = Path(__file__).resolve().parent
    script = package.parent / "train.py"
    return str(script if script.is_file() else package / "__main__.py")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``lrsched-branch`` and ``python -m lrsched_pl.branch``."""
    args = _parser().parse_intermixed_args(argv)
    try:
        hydra_args = plan(args.run, args.ckpt, args.overrides, args.multirun)
    except ConfigValueError as error:
        if full_error():
            raise
        print(f"Error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    from lrsched_pl import app

    # Lightning's ModelCheckpoint notes that the checkpoints now go elsewhere than the parent's: that is the branch
    warnings.filterwarnings("ignore", message=r".*The dirpath has changed from.*")
    sys.argv = [_training_command(), *hydra_args]
    app.main()


if __name__ == "__main__":
    main()
